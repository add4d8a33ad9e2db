"""Property: for random DAGs and random edits, the affected set is exactly the
downstream closure of the stages whose own inputs changed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.pipeline.changes import compute_impact
from sluice.util.git import Repo
from tests.conftest import git


@st.composite
def dag_and_edits(draw: st.DrawFn) -> tuple[list[list[int]], set[int], set[int]]:
    n = draw(st.integers(min_value=1, max_value=7))
    parents = [sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else []
               for i in range(n)]
    edited_files = draw(st.sets(st.integers(0, n - 1)))
    edited_params = draw(st.sets(st.integers(0, n - 1)))
    return parents, edited_files, edited_params


def _config(parents: list[list[int]]) -> str:
    lines = ["params: params.yaml", "stages:"]
    for i, ups in enumerate(parents):
        lines += [f"  s{i}:", f"    cmd: cat src/s{i}.txt > ${{outs.o}}",
                  f"    deps: [src/s{i}.txt]", f"    params: [p{i}]",
                  f"    outs: {{o: build/s{i}.txt}}"]
        if ups:
            lines.append("    inputs: [" + ", ".join(f"stages.s{u}.outs.o" for u in ups) + "]")
    return "\n".join(lines) + "\n"


def _write(root: Path, n: int, file_version: dict[int, int], param_version: dict[int, int],
           parents: list[list[int]]) -> None:
    (root / "sluice.yaml").write_text(_config(parents))
    (root / "src").mkdir(exist_ok=True)
    for i in range(n):
        (root / f"src/s{i}.txt").write_text(f"v{file_version.get(i, 0)}\n")
    (root / "params.yaml").write_text(
        "".join(f"p{i}: {param_version.get(i, 0)}\n" for i in range(n)))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=dag_and_edits())
def test_affected_is_downstream_closure_of_direct_changes(
        case: tuple[list[list[int]], set[int], set[int]], tmp_path: Path) -> None:
    parents, edited_files, edited_params = case
    n = len(parents)
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    git(root, "init", "-q", "-b", "main")
    _write(root, n, {}, {}, parents)
    git(root, "add", "-A")
    git(root, "-c", "user.email=a@b", "-c", "user.name=n", "commit", "-q", "-m", "base")
    _write(root, n, dict.fromkeys(edited_files, 1), dict.fromkeys(edited_params, 1), parents)

    impact = compute_impact(Repo.open(root), "main")

    direct = edited_files | edited_params
    expected = set(direct)
    for i in range(n):  # parents always have smaller indices: one pass suffices
        if any(p in expected for p in parents[i]):
            expected.add(i)
    assert set(impact.affected_stages) == {f"s{i}" for i in expected}
    for i in direct:
        assert impact.stages[f"s{i}"].reasons, f"s{i} changed but has no reason"
