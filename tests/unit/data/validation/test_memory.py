"""A 2 GB Parquet file is validated in bounded memory (peak RSS < 1 GB)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

GOAL_BYTES = 2 * 1024**3
BLOCK_ROWS = 1_000_000
FLOATS = 16

WORKER = """\
import json, resource, sys
from pathlib import Path
from sluice.data.validation.engine import validate_path
from sluice.data.validation.schema_file import load_schema
schema = load_schema(Path(sys.argv[2]), "s")
rows, _, failures = validate_path(Path(sys.argv[1]), "parquet", schema)
found = [[f.column, f.check, f.failing_rows, [e.row for e in f.examples]] for f in failures]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"rows": rows, "failures": found, "rss": rss}))
"""


def _write_big(path: Path) -> int:
    """Repeated random blocks, uncompressed, with a running id: fast to write, 2 GB on disk."""
    rng = np.random.default_rng(0)
    block = {f"f{i}": pa.array(rng.random(BLOCK_ROWS)) for i in range(FLOATS)}
    blocks = GOAL_BYTES // (BLOCK_ROWS * (FLOATS + 1) * 8) + 1
    schema = pa.schema([("id", pa.int64()), *[(name, pa.float64()) for name in block]])
    with pq.ParquetWriter(path, schema, compression="NONE", use_dictionary=False) as writer:
        for b in range(blocks):
            ids = np.arange(b * BLOCK_ROWS, (b + 1) * BLOCK_ROWS)
            if b == blocks - 1:
                ids[-1] = 7  # one duplicate key, in the last row group
            writer.write_table(pa.table({"id": pa.array(ids), **block}, schema=schema))
    return blocks * BLOCK_ROWS


@pytest.mark.slow
def test_two_gigabyte_parquet_in_bounded_memory(tmp_path: Path) -> None:
    data = tmp_path / "big.parquet"
    rows = _write_big(data)
    assert data.stat().st_size >= GOAL_BYTES
    schema = tmp_path / "schema.yaml"
    schema.write_text("columns:\n  id: {dtype: int64, unique: true, min: 0}\n" + "".join(
        f"  f{i}: {{dtype: float64, min: 0.0, max: 1.0}}\n" for i in range(FLOATS)))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WORKER, str(data), str(schema)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["rows"] == rows
    assert result["failures"] == [["id", "unique", 2, [7, rows - 1]]]
    assert result["rss"] < 1024**3, f"peak RSS {result['rss'] / 1e6:.0f} MB"
    print(f"validated {rows:,} rows in {time.perf_counter() - start:.1f} s, "
          f"peak RSS {result['rss'] / 1e6:.0f} MB")
