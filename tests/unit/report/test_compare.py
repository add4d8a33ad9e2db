"""The per-slice plot of `sluice plots diff`: both sides' values per slice value."""

from __future__ import annotations

import random
from pathlib import Path

import matplotlib

from sluice.evaluate.predictions import read_predictions
from sluice.report.compare import _slices_plot

matplotlib.use("Agg")


def _predictions(folder: Path, name: str, quality: float) -> object:
    rng = random.Random(3)
    lines = ["id,y_true,y_score,region"]
    for i in range(400):
        y = rng.random() < 0.5
        score = min(max(0.5 + (quality if y else -quality) + rng.gauss(0, 0.2), 0), 1)
        lines.append(f"{i},{int(y)},{score:.4f},{'north' if i % 2 else 'south'}")
    path = folder / f"{name}.csv"
    path.write_text("\n".join(lines) + "\n")
    return read_predictions(path)


def test_slices_are_drawn_for_a_column_both_sides_have(tmp_path: Path) -> None:
    series = [("old", _predictions(tmp_path, "old", 0.3)),
              ("new", _predictions(tmp_path, "new", 0.1))]
    name = _slices_plot(series, "roc_auc", "churn", tmp_path)
    assert name == "churn-slices.png"
    assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_no_slice_plot_without_a_common_slice_column(tmp_path: Path) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_text("y_true,y_score\n" + "".join(f"{i % 2},0.{i % 9}\n" for i in range(60)))
    series = [("old", read_predictions(plain)), ("new", _predictions(tmp_path, "new", 0.2))]
    assert _slices_plot(series, "roc_auc", "churn", tmp_path) is None
