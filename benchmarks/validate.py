"""Schema validation of a large Parquet file: sluice (chunked) vs pandera on the whole file.

The data: ROWS rows x 20 columns (an int64 key, ints and floats with ranges,
strings and categories with allowed values, one string column with a regex),
written in row groups of 1M rows. The schema checks every column; the key is
unique. Both sides run in fresh subprocesses and report wall time and peak RSS:

- sluice: ``sluice.data.validation.engine.validate_path`` (chunks of 500k rows,
  pandera per chunk, cross-chunk uniqueness by hashing);
- pandera: ``pd.read_parquet`` of the whole file, then the same schema
  translated whole (``to_pandera(schema, whole=True)``) and
  ``schema.validate(df, lazy=True)``.

Targets: sluice's time <= 1.5x pandera's, and sluice's peak RSS < 1 GB.

    python benchmarks/validate.py            # 10M rows
    python benchmarks/validate.py --rows 2000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _common import Section, Target, bench_env, require_sluice, verdict, work_dir

TIME_RATIO = 1.5
RSS_LIMIT = 1024**3
GROUP = 1_000_000

SCHEMA = """\
version: 1
strict: true
columns:
  id: {dtype: int64, unique: true}
%(ints)s
%(floats)s
%(strings)s
%(cats)s
  code: {dtype: string, regex: '[A-Z]{2}-[0-9]{4}'}
checks:
  rows: {min: 1}
"""

WORKER = """\
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
from sluice.data.validation.schema_file import load_schema
schema = load_schema(Path(sys.argv[2]), "schema.yaml")
if sys.argv[1] == "sluice":
    from sluice.data.validation.engine import validate_path
    rows, _, failures = validate_path(Path(sys.argv[3]), "parquet", schema)
    failed = len(failures)
else:
    import pandas as pd
    import pandera.pandas as pa
    from sluice.data.validation.checks import to_pandera
    frame = pd.read_parquet(sys.argv[3])
    rows = len(frame)
    try:
        to_pandera(schema, whole=True).validate(frame, lazy=True)
        failed = 0
    except pa.errors.SchemaErrors as exc:
        failed = len(exc.failure_cases)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "rss": rss, "rows": rows, "failed": failed}))
"""


def make_data(folder: Path, rows: int) -> tuple[Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    words = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"], dtype=object)
    codes = np.array([f"{a}{b}-{n:04d}" for a, b, n in zip(
        rng.choice(list("ABCDEFGH"), 1000), rng.choice(list("XYZ"), 1000),
        rng.integers(0, 10_000, 1000), strict=True)], dtype=object)
    path = folder / "data.parquet"
    writer = None
    for start in range(0, rows, GROUP):
        n = min(GROUP, rows - start)
        cols: dict[str, pa.Array] = {"id": pa.array(np.arange(start, start + n))}
        for i in range(6):
            cols[f"i{i}"] = pa.array(rng.integers(0, 1000 * (i + 1), n))
            cols[f"f{i}"] = pa.array(rng.random(n) * (i + 1))
        for i in range(3):
            cols[f"s{i}"] = pa.array(words[rng.integers(0, len(words), n)], pa.string())
            cols[f"c{i}"] = pa.array(words[rng.integers(0, len(words), n)],
                                     pa.string()).dictionary_encode()
        cols["code"] = pa.array(codes[rng.integers(0, len(codes), n)], pa.string())
        table = pa.table(cols)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()
    allowed = "[alpha, beta, gamma, delta, epsilon, zeta]"
    schema = folder / "schema.yaml"
    schema.write_text(SCHEMA % {
        "ints": "\n".join(f"  i{i}: {{dtype: int64, min: 0, max: {1000 * (i + 1)}}}"
                          for i in range(6)),
        "floats": "\n".join(f"  f{i}: {{dtype: float64, min: 0.0, max: {i + 1}.0}}"
                            for i in range(6)),
        "strings": "\n".join(f"  s{i}: {{dtype: string, allowed: {allowed}}}" for i in range(3)),
        "cats": "\n".join(f"  c{i}: {{dtype: category, allowed: {allowed}}}" for i in range(3)),
    })
    return path, schema


def measure(side: str, data: Path, schema: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, "-c", WORKER, side, str(schema), str(data)],
                          capture_output=True, text=True, env=bench_env())
    if proc.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{proc.stdout}\n{proc.stderr}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def bench(rows: int = 10_000_000) -> Section:
    """Validate ``rows`` x 20 columns with sluice (chunked) and pandera (whole file)."""
    require_sluice()
    with work_dir("validate") as folder:
        print(f"writing {rows:,} rows x 20 columns ...", flush=True)
        data, schema = make_data(folder, rows)
        size = data.stat().st_size
        runs = {side: measure(side, data, schema) for side in ("sluice", "pandera")}
    for side, result in runs.items():
        if result["failed"]:
            raise RuntimeError(f"{side} reported failures on valid data: {result}")
    sl, pd_ = runs["sluice"], runs["pandera"]
    ratio = sl["seconds"] / pd_["seconds"]
    section = Section(
        title="Data validation",
        what=f"Validate a {rows:,}-row x 20-column Parquet file ({size / 1e6:,.0f} MB) "
             "against a schema checking every column (ranges, allowed values, a regex, a "
             "unique key): sluice in chunks vs pandera on the file loaded whole.",
        headers=["", "time", "peak RSS"],
        rows=[["sluice (chunked)", f"{sl['seconds']:.2f} s", f"{sl['rss'] / 1e6:,.0f} MB"],
              ["pandera (whole file)", f"{pd_['seconds']:.2f} s", f"{pd_['rss'] / 1e6:,.0f} MB"]])
    section.findings = [f"time ratio sluice/pandera: {ratio:.2f} (target <= {TIME_RATIO}): "
                        f"{verdict(ratio <= TIME_RATIO)}",
                        f"sluice peak RSS {sl['rss'] / 1e6:,.0f} MB (target < "
                        f"{RSS_LIMIT / 1e6:,.0f} MB): {verdict(sl['rss'] < RSS_LIMIT)}"]
    section.targets = [Target("validation time vs pandera", f"<= {TIME_RATIO}x",
                              f"{ratio:.2f}x", ratio <= TIME_RATIO),
                       Target("validation peak RSS", "< 1 GB", f"{sl['rss'] / 1e6:,.0f} MB",
                              sl["rss"] < RSS_LIMIT)]
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    bench(parser.parse_args().rows).print()


if __name__ == "__main__":
    main()
