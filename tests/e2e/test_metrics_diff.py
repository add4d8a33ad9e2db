"""End-to-end: `sluice metrics diff` from stored predictions, with paired intervals."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from tests.conftest import git, sluice
from tests.e2e.pipelines import MODEL_PIPELINE, PREDICT, write_project

CONFIG = MODEL_PIPELINE + """\
    gates:
      - {metric: roc_auc, min: 0.6}
tiers:
  merge: {select: all, register: true}
"""


def _diff(repo: Path, *revs: str) -> dict[str, Any]:
    found = json.loads(sluice(repo, "metrics", "diff", *revs, "--json").stdout)
    assert [c["model"] for c in found] == ["churn"]
    return found[0]  # type: ignore[no-any-return]


def test_metrics_diff_compares_a_registered_version_with_the_working_tree(repo: Path) -> None:
    write_project(repo, CONFIG, files={"predict.py": PREDICT,
                                       "params.yaml": "quality: 0.3\nrows: 600\n"})
    git(repo, "branch", "-M", "main")
    sluice(repo, "run", "--tier", "merge")  # version 1, registered from main's commit
    git(repo, "checkout", "-q", "-b", "worse")
    (repo / "params.yaml").write_text("quality: 0.05\nrows: 600\n")

    stale = _diff(repo)   # the working tree's evaluation has not run: said, not filled in
    assert stale["old"]["label"].startswith("main (") and "version 1" in stale["old"]["label"]
    assert stale["new"]["predictions"] is None
    assert "sluice run evaluate" in stale["new"]["reason"]
    assert stale["method"] == "point values"
    auc = next(m for m in stale["metrics"] if m["metric"] == "roc_auc")
    assert auc["old"] > 0.8 and auc["new"] is None and auc["delta"] is None

    sluice(repo, "run", check=None)  # its gates may be INCONCLUSIVE (exit 4): not the point
    fresh = _diff(repo, "main")
    assert fresh["method"].startswith("paired bootstrap")
    assert fresh["new"]["predictions"]["hash"] and fresh["old"]["verdict"] == "PASS"
    auc = next(m for m in fresh["metrics"] if m["metric"] == "roc_auc")
    assert auc["new"] < auc["old"]
    assert auc["low"] <= auc["delta"] <= auc["high"] < 0   # worse, and the interval says so
    text = sluice(repo, "metrics", "diff").stdout
    assert "churn: main (" in text and "→ the working tree (paired bootstrap, 95%)" in text
    assert "roc_auc" in text and "verdict: PASS → –" in text

    page = repo.parent / "compare.html"
    drawn = json.loads(sluice(repo, "plots", "diff", "main", "-o", str(page), "--json").stdout)
    assert drawn["plots"] == {"churn": ["churn-roc.png", "churn-calibration.png"]}
    text = page.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 2 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "main (" in text and "the working tree" in text and "roc_auc" in text

    # HEAD's history holds main's commit: the same version on both sides, no change
    same = _diff(repo, "main", "HEAD")
    assert all(m["delta"] == 0 for m in same["metrics"])


def test_metrics_diff_says_why_a_side_is_missing(repo: Path) -> None:
    write_project(repo, CONFIG, files={"predict.py": PREDICT,
                                       "params.yaml": "quality: 0.3\nrows: 600\n"})
    nothing = _diff(repo, "HEAD")
    assert "no model `churn` in the registry" in nothing["old"]["reason"]
    bad = sluice(repo, "metrics", "diff", "no-such-branch", check=2)
    assert "no-such-branch" in bad.stderr and "Traceback" not in bad.stderr
