"""Run `sluice ARGS` in-process, as `python -m sluice ARGS` would, and record its wall time.

Used by noop_run.py under `python -X importtime`: this script writes a marker line
to stderr right before sluice starts, so the caller can tell sluice's imports
from this script's own, and writes {"seconds": ..., "exit": ...} to OUT_FILE.

    python -X importtime benchmarks/_noop_phases.py OUT_FILE run
"""

from __future__ import annotations

import json
import runpy
import sys
import time

MARKER = "--- sluice starts here ---"


def main() -> None:
    out_file, args = sys.argv[1], sys.argv[2:]
    sys.argv = ["sluice", *args]
    sys.stderr.write(MARKER + "\n")
    sys.stderr.flush()
    code: object = 0
    start = time.perf_counter()
    try:
        runpy.run_module("sluice", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    elapsed = time.perf_counter() - start
    with open(out_file, "w") as handle:
        json.dump({"seconds": elapsed, "exit": code}, handle)


if __name__ == "__main__":
    main()
