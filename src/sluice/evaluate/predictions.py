"""Reading the per-example predictions file an evaluate stage wrote (CSV, Parquet, JSON lines).

An evaluate stage writes one row per test example: ``y_true``; ``y_pred`` and/or
``y_score`` (or one ``score_<class>`` column per class); optional ``id`` and
``weight``; every other column is a slice. sluice computes every metric itself from
these rows (:mod:`sluice.stats`), so a candidate and the production baseline can be
compared on the same examples.
"""

from __future__ import annotations

from pathlib import Path

from sluice.errors import UsageError
from sluice.stats.prediction_columns import from_frame
from sluice.stats.predictions import Predictions, Task

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
           ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_predictions(path: str | Path, *, task: Task | None = None) -> Predictions:
    """Read and validate one predictions file (``.csv``, ``.parquet``/``.pq``, ``.jsonl``).

    ``task`` overrides the detection: score columns mean classification, otherwise a
    numeric ``y_true`` or ``y_pred`` with non-whole values means regression.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError(f"`{path}` is not a predictions file sluice can read",
                         hint="write predictions as .csv, .parquet, .pq, .jsonl or .ndjson")
    if not path.is_file():
        raise UsageError(f"predictions file `{path}` does not exist",
                         hint="check that the evaluate stage writes it (and declares it in outs)")
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    try:
        if fmt == "csv":
            frame = pd.read_csv(path, dtype={"id": str})
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_json(path, lines=True, dtype={"id": str}, precise_float=True)
    except pd.errors.EmptyDataError:
        raise UsageError(f"predictions file `{path}` is empty",
                         hint="the evaluate stage must write a header and one row per example") \
            from None
    except (ValueError, OSError, ImportError) as error:  # parser, Arrow and JSON errors
        raise UsageError(f"`{path}` is not a readable {fmt} file: {error}",
                         hint="fix the file, or give it the extension of its format") from None
    return from_frame(frame, str(path), task)

