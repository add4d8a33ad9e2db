"""``sluice export PLATFORM --tier T`` on the example project: goldens, ``--check``, errors.

Golden files: tests/e2e/golden_export/ holds each platform's export of the example's
``merge`` tier. After an intended change (or a new sluice or SDK version), regenerate with

    SLUICE_UPDATE_GOLDEN=1 python -m pytest tests/e2e/test_export.py -k golden

and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.export.generate import PLATFORM_TABLE
from tests.conftest import sluice

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "churn"
GOLDEN = Path(__file__).resolve().parent / "golden_export"
IMAGE = "ghcr.io/acme/churn@sha256:" + "0123456789abcdef" * 4
SDKS = {name: p.sdk for name, p in PLATFORM_TABLE.items()}
# What a team adds to the example's sluice.yaml for each platform (docs/platforms.md).
EXPORT_SECTIONS = {
    "argo": "  service_account: sluice-runner\n",
    "kfp": "",
    "sagemaker": "  service_account: arn:aws:iam::123456789012:role/sluice-runner\n"
                 "  instance_type: ml.m5.xlarge\n",
    "azureml": "  cluster: cpu-cluster\n",
    "databricks": "  instance_type: i3.xlarge\n  service_account: sluice-runner\n",
}
SECRETS = "  secrets: {SLUICE_DATABASE_URL: sluice-db/url}\n"


def _installed(sdk: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(sdk) is not None
    except ModuleNotFoundError:
        return False


@pytest.fixture
def churn(tmp_path: Path) -> Path:
    root = tmp_path / "churn"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".sluice", "__pycache__"))
    return root


@pytest.mark.parametrize("platform", list(PLATFORM_TABLE))
def test_golden_exports_of_the_example(churn: Path, platform: str) -> None:
    chosen = PLATFORM_TABLE[platform]
    if not _installed(SDKS[platform]) or not _installed(chosen.module):
        pytest.skip(f"the {platform} SDK ({SDKS[platform]}) is not installed")
    _with_export_section(churn, platform)
    out = churn / f"export.{chosen.suffix}"
    sluice(churn, "export", platform, "--tier", "merge", "--image", IMAGE, "-o", str(out))
    golden = GOLDEN / f"{platform}-merge.{chosen.suffix}"
    text = out.read_text()
    if os.environ.get("SLUICE_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"regenerate {golden.name}: see this module's docstring"
    # The committed export is current.
    result = sluice(churn, "export", platform, "--tier", "merge", "--check", str(out), "--json")
    assert json.loads(result.stdout)["ok"] is True


def _with_export_section(churn: Path, platform: str) -> None:
    config = churn / "sluice.yaml"
    config.write_text(config.read_text() + "\nexport:\n" + EXPORT_SECTIONS[platform]
                      + (SECRETS if platform in ("argo", "kfp", "databricks") else ""))


@pytest.mark.parametrize("platform", list(PLATFORM_TABLE))
def test_check_says_which_of_yaml_version_image_changed(churn: Path, platform: str) -> None:
    if not _installed(SDKS[platform]):
        pytest.skip(f"the {platform} SDK is not installed")
    _with_export_section(churn, platform)
    out = churn / f"export.{PLATFORM_TABLE[platform].suffix}"
    sluice(churn, "export", platform, "--tier", "merge", "--image", IMAGE, "-o", str(out))
    committed = out.read_text()

    def changed(*extra: str) -> list[str]:
        result = sluice(churn, "export", platform, "--tier", "merge", "--check", str(out),
                        "--json", *extra, check=1)
        return list(json.loads(result.stdout)["changed"])

    # Another image asked for: only the image changed.
    assert changed("--image", IMAGE.replace("0123", "4567")) == ["image"]
    # A file written by another sluice: only the version changed.
    version = json.loads(sluice(churn, "export", platform, "--tier", "merge", "--check",
                                str(out), "--json").stdout)["current"]["sluice_version"]
    out.write_text(committed.replace(version, "0.0.1"))
    assert changed() == ["sluice version"]
    # sluice.yaml changed (a stage's timeout): only sluice.yaml, and the text says so.
    out.write_text(committed)
    config = churn / "sluice.yaml"
    config.write_text(config.read_text().replace("timeout: 10m", "timeout: 20m", 1))
    assert changed() == ["sluice.yaml"]
    text = sluice(churn, "export", platform, "--tier", "merge", "--check", str(out),
                  check=1).stdout
    assert "DRIFTED" in text and "sluice.yaml changed" in text and "1200" in text, text


def test_bad_usage_exits_2_with_a_hint(churn: Path) -> None:
    result = sluice(churn, "export", "argoo", "--tier", "merge", "--image", IMAGE, check=2)
    assert "unknown platform `argoo`" in result.stderr and "argo" in result.stderr
    result = sluice(churn, "export", "argo", "--tier", "merge", check=2)
    assert "no image" in result.stderr and "--image" in result.stderr
    result = sluice(churn, "export", "argo", "--tier", "nope", "--image", IMAGE, check=2)
    assert "unknown tier `nope`" in result.stderr
    if _installed("hera"):
        result = sluice(churn, "export", "argo", "--tier", "merge", "--image", "acme/churn:1")
        assert "not pinned by digest" in result.stderr and "kind: Workflow" in result.stdout


def test_a_missing_sdk_names_the_extra(churn: Path, tmp_path: Path) -> None:
    # A `hera` that cannot be found: a meta-path finder placed first hides it.
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'hera':\n"
        "            raise ModuleNotFoundError(name)\n"
        "        return None\n"
        "sys.meta_path.insert(0, Hide())\n")
    paths = [str(hide), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    result = sluice(churn, "export", "argo", "--tier", "merge", "--image", IMAGE, check=2,
                    env={"PYTHONPATH": os.pathsep.join(paths)})
    assert "needs the Argo Workflows SDK" in result.stderr
    assert "sluice-ml[argo]" in result.stderr


def test_importing_sluice_and_the_export_cli_imports_no_sdk() -> None:
    code = ("import sys, sluice, sluice.cli.export_cmd, sluice.export.generate, "
            "sluice.export.model\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('hera', 'kfp', 'sagemaker', 'azure', 'databricks')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
