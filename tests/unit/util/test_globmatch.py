"""The one glob matcher: git ``:(glob)`` semantics, the same answer in every caller."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.config.load import load_config
from sluice.pipeline.changes import compute_impact
from sluice.pipeline.fingerprint import RunContext, fingerprint_of, glob_files, stage_components
from sluice.util.git import Repo
from sluice.util.globmatch import compile_glob, glob_match
from sluice.workspace.graph import build_graph, glob_touches
from sluice.workspace.project import Project
from tests.conftest import git

NAMES = ["a", "b", "ab", "ba", ".h", ".a", "x.py", "!x", "^x", "-"]
TOKENS = ["a", "b", ".", "x", "*", "?", "[ab]", "[!a]", "[^b]", "[a-c]", "[!a-b]", "[]a]",
          "[a!b]", "[[:alpha:]]", r"\a", "py"]


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> dict[str, object]:
    """A folder: name → None (a file) or a sub-folder."""
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    return {name: None if depth >= 2 or draw(st.booleans()) else draw(trees(depth + 1))
            for name in names}


@st.composite
def patterns(draw: st.DrawFn) -> str:
    comps = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.integers(0, 4)) == 0:
            comps.append("**")
        else:
            comp = "".join(draw(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=3)))
            # sluice.yaml paths are normalised at load (`./a` → `a`), as git does pathspecs.
            comps.append(comp + "*" if comp in (".", "..") else comp)
    pattern = "/".join(comps)
    # Without a wildcard git also matches a literal path and everything below it.
    return pattern if any(c in pattern for c in "*?[") else pattern + "*"


def _files(tree: dict[str, object], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, sub in tree.items():
        out += [prefix + name] if sub is None else _files(sub, prefix + name + "/")  # type: ignore[arg-type]
    return out


def _git_glob(root: Path, pattern: str) -> set[str]:
    out = git(root, "ls-files", "-z", "--", f":(glob){pattern}")
    return {p for p in out.split("\0") if p}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tree=trees(), pats=st.lists(patterns(), min_size=1, max_size=4))
def test_matcher_agrees_with_git_glob_pathspec(tree: dict[str, object], pats: list[str],
                                               tmp_path: Path) -> None:
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    files = _files(tree)
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    git(root, "init", "-q")
    git(root, "add", "-A")
    for pattern in pats:
        expected = _git_glob(root, pattern)
        assert {f for f in files if glob_match(pattern, f)} == expected, pattern
        # The tree walk the fingerprint uses prunes folders, and finds the same files.
        assert [rel for rel, _ in glob_files(root, pattern)] == sorted(expected), pattern
        for f in expected:  # touches: the file, and every folder above it
            parts = f.split("/")
            assert all(glob_touches(pattern, "/".join(parts[:i]))
                       for i in range(1, len(parts) + 1)), (pattern, f)


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("data/*", "data/.hidden", True),  # `*` matches a leading dot, as in git
    ("[a!b]x", "!x", True),  # `!` inside a class is a character, not negation
    ("[a!b]x", "^x", False),
    ("[!a]x", "bx", True), ("[^a]x", "ax", False),
    ("*", "a/b", False), ("?", "/", False),  # never across `/`
    ("**/x", "x", True), ("**/x", "a/b/x", True),
    ("a/**", "a", False), ("a/**", "a/b/c", True),
    ("a/**/b", "a/b", True), ("a/**/b", "a/x/y/b", True),
    ("a**b", "ax/b", False),  # `**` inside a name is a plain `*`
    ("[]a]", "]", True), ("a[b", "a[b", True),  # unclosed `[` is literal
    ("[[:digit:]]x", "1x", True), ("[z-a]", "m", False),  # a reversed range matches nothing
    (r"\*", "*", True), (r"\*", "a", False), ("[*]", "*", True), ("[*]", "a", False),
])
def test_semantics(pattern: str, path: str, matches: bool) -> None:
    assert glob_match(pattern, path) is matches


def test_below_prunes_only_unreachable_folders() -> None:
    glob = compile_glob("src/*/x.py")
    assert glob.below("src") and glob.below("src/a")
    assert not glob.below("lib") and not glob.below("src/a/b")


def _repo(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q", "-m", "base")


def _fingerprint(root: Path) -> str:
    config = load_config(root)
    project = Project(root=root, config=config, graph=build_graph(config))
    return fingerprint_of(stage_components(project, config.stages["s"], RunContext()))


@pytest.mark.parametrize(("dep", "edited"), [
    ("data/*", "data/.hidden"),
    ("[a!b]x", "!x"),
    ("data/*", "data/plain"),  # and both still see an ordinary match
])
def test_affected_and_fingerprint_agree(tmp_path: Path, dep: str, edited: str) -> None:
    """Editing a file the glob matches changes the fingerprint *and* makes `affected` say so."""
    root = tmp_path / "p"
    _repo(root, {"sluice.yaml": f"stages:\n  s: {{cmd: 'true', deps: ['{dep}']}}\n",
                 edited: "v1\n"})
    before = _fingerprint(root)
    (root / edited).write_text("v2\n")
    changed = _fingerprint(root) != before
    impact = compute_impact(Repo.open(root), "main")
    affected = impact.affected_stages == ["s"]
    assert changed and affected


def test_fingerprint_walk_skips_git_state_and_ignored_hidden_folders(tmp_path: Path) -> None:
    root = tmp_path / "p"
    _repo(root, {".gitignore": ".venv/\n", ".venv/lib/m.py": "", ".github/ci.py": "",
                 ".sluice/x.py": "", ".cache/.gitignore": "*\n", ".cache/c.py": "",
                 "src/a.py": ""})
    (root / ".new").mkdir()
    (root / ".new/n.py").write_text("")  # untracked, not ignored: git sees it, so do we
    assert os.path.isdir(root / ".git")
    assert [rel for rel, _ in glob_files(root, "**/*.py")] == [
        ".github/ci.py", ".new/n.py", "src/a.py"]


def test_fingerprint_walk_outside_git_reads_hidden_folders(tmp_path: Path) -> None:
    (tmp_path / ".h").mkdir()
    (tmp_path / ".h/x.py").write_text("")
    assert [rel for rel, _ in glob_files(tmp_path, "**/*.py")] == [".h/x.py"]
