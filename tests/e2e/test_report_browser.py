"""The HTML report opens in a real browser (headless Chromium) and shows its plots."""

from __future__ import annotations

import json
from pathlib import Path

from tests.browser import launch, needs_chromium
from tests.conftest import sluice
from tests.e2e.pipelines import write_project

# A tiny evaluated model: predictions from a fixed script, a baseline file, one gate.
CONFIG = """\
stages:
  evaluate:
    kind: evaluate
    cmd: python3 predict.py ${outs.predictions}
    deps: [predict.py]
    outs: {predictions: build/predictions.csv}
  train:
    kind: train
    cmd: echo model > ${outs.model}
    outs: {model: build/model.txt}
models:
  m:
    train: train
    evaluate: evaluate
    artifact: model
    baseline: {predictions: baseline.csv}
    gates:
      - {metric: roc_auc, max_regression: 0.05, slices: [region], min_slice_size: 50}
tiers:
  merge: {select: all}
"""
PREDICT = """\
import random, sys
random.seed(1)
rows = ["id,y_true,y_score,y_pred,region"]
for i in range(800):
    y = random.random() < 0.4
    score = min(max((0.65 if y else 0.35) + random.gauss(0, 0.2), 0), 1)
    rows.append(f"{i},{int(y)},{score:.4f},{int(score > 0.5)},{'ns'[i % 2]}")
open(sys.argv[1], "w").write("\\n".join(rows) + "\\n")
"""


@needs_chromium
def test_html_report_renders_its_plots_in_chromium(repo: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    write_project(repo, CONFIG, files={"predict.py": PREDICT})
    first = sluice(repo, "run", "--tier", "merge", check=4)  # no baseline file yet
    assert "baseline predictions `baseline.csv` do not exist" in first.stdout
    (repo / "baseline.csv").write_text((repo / "build/predictions.csv").read_text())
    result = sluice(repo, "run", "--tier", "merge")
    assert "model m: PASS" in result.stdout
    page_path = Path(sluice(repo, "report", "--format", "html").stdout.strip())
    assert page_path.is_file()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(page_path.as_uri())
            widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
            text = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert len(widths) >= 3 and all(w > 100 for w in widths), widths
    assert "Model m: PASS" in text and "`" not in text and "region=n" in text
    assert (tmp_path / "report.png").stat().st_size > 10_000
    report = json.loads((page_path.parent / "report.json").read_text())
    assert report["models"][0]["verdict"] == "PASS"
