"""Model registry: register, promote, get by alias and history, sluice vs MLflow's registry.

Each operation is timed one call at a time through the library API, in one
process per tool (database open, imports done), so what is measured is the
registry itself, not interpreter start-up:

- sluice (this interpreter): ``sluice.registry.versions.register`` (a version with a
  realistic payload: lineage with commit, branch, tier, run, fingerprints,
  inputs and params; five metrics; three gate verdicts with their evidence),
  ``sluice.registry.promotion.promote`` to ``staging`` under the policy
  ``{gates: pass}`` (no approvals: the alias moves at once, with its history
  event and audit entry), ``sluice.registry.versions.get_version(alias=...)`` and
  ``sluice.registry.versions.history`` of an alias with 100 moves.
- MLflow (its own venv, ``benchmarks/.venv-mlflow``, created on first use; a
  worker process that this script drives through a pipe and that answers with
  JSON timings): ``MlflowClient.create_model_version`` (name and source only,
  its least work), ``set_registered_model_alias`` and
  ``get_model_version_by_alias``. MLflow keeps no history of alias moves, so
  history has no counterpart.

Both tools first get the same registered model with 50 versions and the alias
on version 1; every promotion then moves it to the next of those 50 (always a
real move). 20 warm-up calls of each operation, then 200 timed ones in 8 rounds
of 25, the tools taking turns (the first one alternating), so both see the same
background load. Median and p95 of the 200 calls.

Backends: SQLite, a file in a temporary folder (``sqlite:///...``), for both,
each with its own settings (sluice: WAL, synchronous=NORMAL, no fsync per
commit; MLflow: SQLite's defaults, fsyncs on every commit); again with sluice's
connections set to synchronous=FULL, as durable as MLflow's; then PostgreSQL 15
when its binaries (``initdb``, ``pg_ctl``) are on PATH and a server starts here:
a throwaway cluster in the temporary folder, default settings, reached over TCP
on 127.0.0.1 (as root it runs as user ``nobody``), one database per tool;
MLflow reaches it through psycopg 3 like sluice.

Target: sluice faster than MLflow on every operation both have.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from _common import (
    BENCH_DIR,
    Section,
    Target,
    bench_env,
    faster,
    pip_install,
    require_sluice,
    run,
    verdict,
    work_dir,
)

MLFLOW_VENV = BENCH_DIR / ".venv-mlflow"  # git-ignored (benchmarks/.venv-*/)
MLFLOW_PACKAGES = ["mlflow", "psycopg[binary]"]  # psycopg: MLflow on PostgreSQL
MLFLOW_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}

MODEL = "churn"
HISTORY_MODEL = "fraud"
ALIAS = "staging"
PRELOAD = 50  # versions registered before timing; promotions cycle through them
HISTORY_MOVES = 100
WARMUP = 20
OPS = 200
ROUNDS = 8
FULL_SYNC = "SQLite, synchronous=FULL ¹"
SHORT = {FULL_SYNC: "FULL ¹", "PostgreSQL": "Postgres"}  # for the summary table

# name, label, sluice call, MLflow call (None: MLflow has no such operation)
OPERATIONS: list[tuple[str, str, str, str | None]] = [
    ("register", "register a version", "`register()`", "`create_model_version`"),
    ("promote", "promote (move alias)", "`promote()`", "`set_registered_model_alias`"),
    ("get", "get by alias", "`get_version(alias=)`", "`get_model_version_by_alias`"),
    ("history", "alias history (100 moves)", "`history(model, alias)`", None),
]


# --------------------------------------------------------------------------- timing


def timed(fn: Callable[[], Any], n: int) -> tuple[list[float], Any]:
    """Call ``fn`` ``n`` times, timing each call; returns the samples and the last result."""
    samples: list[float] = []
    last = None
    for _ in range(n):
        start = time.perf_counter()
        last = fn()
        samples.append(time.perf_counter() - start)
    return samples, last


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[-1]


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


# --------------------------------------------------------------------------- sluice


def version_payload(i: int) -> dict[str, Any]:
    """What a tier run registers: the artifact by hash, lineage, metrics, gates with evidence."""
    commit = f"{i:040x}"
    return {
        "artifact_hash": f"{i:032x}", "artifact_path": "build/model.pkl", "verdict": "PASS",
        "lineage": {
            "commit": commit, "branch": "main", "tier": "merge", "run_id": f"run-{i:06d}",
            "fingerprints": {"train": f"{i + 1:032x}", "evaluate": f"{i + 2:032x}"},
            "inputs": {"train": {"data/train.parquet": f"{i + 3:032x}",
                                 "src/train.py": f"{i + 4:040x}"},
                       "evaluate": {"data/test.parquet": f"{i + 5:032x}"}},
            "params": {"train": {"lr": 0.05, "depth": 6, "seed": 0}, "evaluate": {}},
        },
        "metrics": {"roc_auc": 0.871, "pr_auc": 0.512, "log_loss": 0.301,
                    "brier": 0.087, "accuracy": 0.902},
        "gates": [
            {"metric": "roc_auc", "rule": "min 0.8", "slice": None, "verdict": "PASS",
             "point": 0.871, "low": 0.862, "high": 0.880, "method": "bootstrap",
             "confidence": 0.95, "candidate": 0.871, "baseline": None, "reason": ""},
            {"metric": "roc_auc", "rule": "no worse than baseline by 0.01", "slice": None,
             "verdict": "PASS", "point": 0.004, "low": -0.002, "high": 0.010,
             "method": "paired bootstrap", "confidence": 0.95, "candidate": 0.871,
             "baseline": 0.867, "reason": ""},
            {"metric": "log_loss", "rule": "max 0.35", "slice": "region=eu",
             "verdict": "PASS", "point": 0.312, "low": 0.298, "high": 0.327,
             "method": "bootstrap", "confidence": 0.95, "candidate": 0.312,
             "baseline": None, "reason": ""},
        ],
        "creator": "ci",
    }


class SluiceSide:
    """sluice's registry through its library API, in this process."""

    name = "sluice"

    def __init__(self, url: str, lock_dir: Path, synchronous: str | None = None) -> None:
        from sluice.config.schema import PolicySpec
        from sluice.db import open_database

        self.db = open_database(url, lock_dir)
        if synchronous is not None:
            self._force_synchronous(synchronous)
        self.policies = {ALIAS: PolicySpec(gates="pass")}
        self.registered = 0
        self.target = 1

    def _force_synchronous(self, mode: str) -> None:
        """Override sluice's ``PRAGMA synchronous=NORMAL`` on every SQLite connection."""
        from sqlalchemy import event, text

        def pragma(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA synchronous={mode}")
            cursor.close()

        event.listen(self.db.engine, "connect", pragma)  # runs after sluice's own listener
        self.db.engine.dispose()
        with self.db.engine.connect() as conn:
            got = conn.execute(text("PRAGMA synchronous")).scalar()
        if got != {"FULL": 2, "NORMAL": 1}[mode]:
            raise RuntimeError(f"PRAGMA synchronous={mode} did not take ({got})")

    def register(self) -> int:
        from sluice.registry.versions import register

        self.registered += 1
        return register(self.db, MODEL, **version_payload(self.registered)).version

    def promote(self) -> int:
        from sluice.registry.promotion import promote

        self.target = self.target % PRELOAD + 1
        outcome = promote(self.db, self.policies, MODEL, self.target, ALIAS, "ci", None, "main")
        if not outcome.moved:
            raise RuntimeError(f"sluice did not move `{ALIAS}`: {outcome.message}")
        return outcome.version

    def get(self) -> int:
        from sluice.registry.versions import get_version

        return get_version(self.db, MODEL, alias=ALIAS).version

    def history(self) -> int:
        from sluice.registry.versions import history

        return len(history(self.db, HISTORY_MODEL, ALIAS))

    def setup(self) -> None:
        from sluice.registry.promotion import move_alias, promote
        from sluice.registry.versions import register

        for _ in range(PRELOAD):
            self.register()
        promote(self.db, self.policies, MODEL, 1, ALIAS, "ci", None, "main")
        for i in (1, 2):
            register(self.db, HISTORY_MODEL, **version_payload(10_000 + i))
        current = None
        for i in range(HISTORY_MOVES):
            to = 1 + i % 2
            move_alias(self.db, HISTORY_MODEL, ALIAS, to, current, "ci", "promote", None)
            current = to

    def run(self, op: str, n: int) -> tuple[list[float], Any]:
        return timed(getattr(self, op), n)

    def close(self) -> None:
        self.db.engine.dispose()


# --------------------------------------------------------------------------- MLflow


def mlflow_python() -> Path:
    """The interpreter of benchmarks/.venv-mlflow, creating that venv on first use."""
    python = MLFLOW_VENV / "bin" / "python"
    return python if python.exists() else pip_install(MLFLOW_VENV, *MLFLOW_PACKAGES)


def mlflow_worker(uri: str, source: str) -> None:
    """Runs in MLflow's venv: answers one JSON line of timings per command line on stdin."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever MLflow prints goes to stderr, never into the answers

    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    state = {"target": 1}

    def register() -> int:
        return int(client.create_model_version(MODEL, source, run_id=None).version)

    def promote() -> int:
        state["target"] = state["target"] % PRELOAD + 1
        client.set_registered_model_alias(MODEL, ALIAS, str(state["target"]))
        return state["target"]

    def get() -> int:
        return int(client.get_model_version_by_alias(MODEL, ALIAS).version)

    def answer(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    ops = {"register": register, "promote": promote, "get": get}
    answer({"ready": True, "version": mlflow.__version__})
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "quit":
            break
        if command["op"] == "setup":
            client.create_registered_model(MODEL)
            for _ in range(PRELOAD):
                register()
            client.set_registered_model_alias(MODEL, ALIAS, "1")
            answer({"done": True})
            continue
        samples, last = timed(ops[command["op"]], command["n"])
        answer({"samples": samples, "last": last})


class MlflowSide:
    """MLflow's registry in a worker process of its own venv, driven through a pipe."""

    name = "MLflow"

    def __init__(self, uri: str, folder: Path) -> None:
        source = folder / "mlflow-artifact"
        source.mkdir(exist_ok=True)
        (source / "model.pkl").write_bytes(b"model")
        self.log = (folder / "mlflow-worker.log").open("w+")
        self.proc = subprocess.Popen(
            [mlflow_python(), Path(__file__).resolve(), "--mlflow-worker", uri, str(source)],
            cwd=folder, env=bench_env(MLFLOW_ENV), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.version = self._receive()["version"]

    def _receive(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            self.proc.wait(timeout=30)
            self.log.seek(0)
            raise RuntimeError(f"the MLflow worker exited ({self.proc.returncode}):\n"
                               + self.log.read()[-3000:])
        return dict(json.loads(line))

    def _send(self, command: dict[str, Any]) -> dict[str, Any]:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(command) + "\n")
        stdin.flush()
        return self._receive()

    def setup(self) -> None:
        self._send({"op": "setup"})

    def run(self, op: str, n: int) -> tuple[list[float], Any]:
        reply = self._send({"op": op, "n": n})
        return list(reply["samples"]), reply["last"]

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)
        self.log.close()


# --------------------------------------------------------------------------- comparing


Samples = dict[tuple[str, str], list[float]]


def compare(sluice: SluiceSide, mlflow: MlflowSide, ops: int) -> Samples:
    """Warm-up, then ``ops`` timed calls per operation and tool, in rounds, taking turns."""
    sides: list[SluiceSide | MlflowSide] = [sluice, mlflow]
    names = [op for op, *_ in OPERATIONS]
    mlflow_names = [op for op, _, _, call in OPERATIONS if call is not None]
    for side in sides:
        side.setup()
    for op in names:
        for side in sides:
            if side is sluice or op in mlflow_names:
                side.run(op, WARMUP)
    samples: Samples = {}
    per_round = max(1, ops // ROUNDS)
    for round_ in range(ROUNDS):
        order = sides if round_ % 2 == 0 else sides[::-1]
        for op in names:
            for side in order:
                if side is mlflow and op not in mlflow_names:
                    continue
                got, _ = side.run(op, per_round)
                samples.setdefault((side.name, op), []).extend(got)
    # Both registries must have done what was asked of them.
    expected = PRELOAD + WARMUP + per_round * ROUNDS
    for side in sides:
        _, latest = side.run("register", 1)
        if latest != expected + 1:
            raise RuntimeError(f"{side.name} registered version {latest}, expected "
                               f"{expected + 1}")
        _, held = side.run("get", 1)
        _, moved = side.run("promote", 1)
        _, now = side.run("get", 1)
        if now != moved or held == moved:
            raise RuntimeError(f"{side.name}: `{ALIAS}` points at {now}, expected {moved}")
    _, events = sluice.run("history", 1)
    if events != HISTORY_MOVES:
        raise RuntimeError(f"sluice's history has {events} moves, expected {HISTORY_MOVES}")
    return samples


# --------------------------------------------------------------------------- PostgreSQL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres(folder: Path) -> Iterator[tuple[str | None, str]]:
    """A throwaway PostgreSQL server; yields (``user@host:port``, "") or (None, why not)."""
    missing = [b for b in ("initdb", "pg_ctl") if shutil.which(b) is None]
    if missing:
        yield None, f"{' and '.join(missing)} not on PATH"
        return
    try:
        import psycopg
    except ImportError:
        yield None, "psycopg is not installed for sluice (pip install 'sluice-ml[postgres]')"
        return
    as_user: list[str] = []
    pgdir = folder / "postgres"
    pgdir.mkdir()
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        nobody = pwd.getpwnam("nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
        os.chmod(folder, 0o711)
        os.chown(pgdir, nobody.pw_uid, nobody.pw_gid)
    data, port = pgdir / "data", free_port()
    try:
        run([*as_user, "initdb", "-D", data, "-A", "trust", "-U", "sluice", "-E", "UTF8",
             "--no-sync"], pgdir)
        run([*as_user, "pg_ctl", "-D", data, "-l", pgdir / "server.log", "-w", "-o",
             f"-p {port} -k {pgdir} -c listen_addresses=127.0.0.1", "start"], pgdir)
    except Exception as exc:
        reason = str(exc).strip().splitlines()
        yield None, "the server did not start: " + " / ".join(reason[-3:])
        return
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=sluice dbname=postgres",
                             autocommit=True) as conn:
            for name in ("sluice", "mlflow"):
                conn.execute(f"CREATE DATABASE {name}")
            version = conn.execute("SHOW server_version").fetchone()
        yield f"sluice@127.0.0.1:{port}", str(version[0] if version else "")
    finally:
        run([*as_user, "pg_ctl", "-D", data, "-m", "fast", "-w", "stop"], pgdir, check=False)


# --------------------------------------------------------------------------- benchmark


def measure_backend(label: str, sluice_url: str, mlflow_url: str, folder: Path,
                    ops: int, synchronous: str | None = None) -> tuple[Samples, str]:
    folder.mkdir()
    print(f"timing {label}...", flush=True)
    sluice = SluiceSide(sluice_url, folder / "locks", synchronous)
    mlflow = MlflowSide(mlflow_url, folder)
    try:
        return compare(sluice, mlflow, ops), mlflow.version
    finally:
        sluice.close()
        mlflow.close()


def bench(ops: int = OPS, with_postgres: bool = True) -> Section:
    require_sluice()
    mlflow_python()  # install MLflow before any timing starts
    results: dict[str, Samples] = {}
    mlflow_version = "?"
    postgres_note = "PostgreSQL: not measured (--no-postgres)"
    with work_dir("registry") as tmp:
        lite = tmp / "sqlite"
        results["SQLite"], mlflow_version = measure_backend(
            "SQLite", f"sqlite:///{lite / 'sluice.db'}", f"sqlite:///{lite / 'mlflow.db'}",
            lite, ops)
        full = tmp / "sqlite-full"
        results[FULL_SYNC], _ = measure_backend(
            FULL_SYNC, f"sqlite:///{full / 'sluice.db'}", f"sqlite:///{full / 'mlflow.db'}",
            full, ops, synchronous="FULL")
        if with_postgres:
            with postgres(tmp) as (server, detail):
                if server is None:
                    postgres_note = f"PostgreSQL: not measured: {detail}"
                    print(postgres_note, flush=True)
                else:
                    postgres_note = (f"PostgreSQL {detail}: a throwaway server with default "
                                     "settings, over TCP on 127.0.0.1")
                    results["PostgreSQL"], _ = measure_backend(
                        "PostgreSQL", f"postgresql+psycopg://{server}/sluice",
                        f"postgresql+psycopg://{server}/mlflow", tmp / "pg-run", ops)

    per = max(1, ops // ROUNDS) * ROUNDS
    section = Section(
        title="Model registry: register, promote, get by alias, history (sluice vs MLflow)",
        what=(
            "Each operation timed one call at a time through the library API, in one "
            "process per tool with its database open (no interpreter start-up): sluice's "
            "`register()` (a version with lineage, five metrics and three gate verdicts "
            "with their evidence), `promote()` to `staging` under the policy "
            "`{gates: pass}` (no approvals: the alias moves at once, with its history event "
            "and audit entry), `get_version(alias=)` and `history()` of an alias with "
            f"{HISTORY_MOVES} moves; MLflow {mlflow_version}'s `MlflowClient` in its own "
            "venv (`benchmarks/.venv-mlflow`), driven through a pipe: "
            "`create_model_version` (name and source only, its least work), "
            "`set_registered_model_alias` and `get_model_version_by_alias`. Each tool "
            f"starts with one model of {PRELOAD} versions; each promotion moves the alias "
            f"to the next of them. {WARMUP} warm-up calls per operation, then {per} timed "
            f"ones in {ROUNDS} rounds, the tools taking turns. Median and p95 per call. "
            "SQLite: a file in a temporary folder for each tool, each with its own "
            "settings (sluice: WAL, synchronous=NORMAL; MLflow: SQLite's defaults, a "
            "rollback journal and synchronous=FULL); the rows marked ¹ repeat the "
            "comparison with sluice made as durable as MLflow (see the note). "
            f"{postgres_note}; one database per tool, both through psycopg 3."),
        headers=["database", "operation", "sluice call", "sluice median", "sluice p95",
                 "MLflow call", "MLflow median", "MLflow p95", "MLflow / sluice"],
    )
    ratios: dict[str, dict[str, float]] = {}
    for backend, samples in results.items():
        for op, label, sluice_call, mlflow_call in OPERATIONS:
            ours = samples[("sluice", op)]
            row = [backend, label, sluice_call, fmt_ms(statistics.median(ours)),
                   fmt_ms(p95(ours))]
            if mlflow_call is None:
                row += ["— (no alias history)", "", "", ""]
            else:
                theirs = samples[("MLflow", op)]
                ratio = statistics.median(theirs) / statistics.median(ours)
                ratios.setdefault(op, {})[backend] = ratio
                row += [mlflow_call, fmt_ms(statistics.median(theirs)), fmt_ms(p95(theirs)),
                        f"{ratio:.1f}×"]
            section.rows.append(row)

    for op, label, _, mlflow_call in OPERATIONS:
        if mlflow_call is None:
            continue
        by_backend = ratios[op]
        ok = all(r > 1 for r in by_backend.values())
        parts = []
        for backend, ratio in by_backend.items():
            samples = results[backend]
            part = f"{SHORT.get(backend, backend)} {ratio:.1f}×"
            if backend == "SQLite":
                mine = statistics.median(samples[("sluice", op)])
                other = statistics.median(samples[("MLflow", op)])
                part += f" ({fmt_ms(mine)} vs {fmt_ms(other)})"
            parts.append(part)
        section.targets.append(Target(f"registry, {label}: sluice vs MLflow, median per call",
                                      "faster than MLflow", ", ".join(parts), ok))
        section.findings.append(
            f"{label}: sluice is " + ", ".join(f"**{faster(r)}** on {b}"
                                              for b, r in by_backend.items())
            + f" than MLflow (target: faster: {verdict(ok)})")
    section.findings.append(
        f"alias history ({HISTORY_MOVES} moves, each with actor, reason and evidence): "
        + ", ".join(f"{fmt_ms(statistics.median(samples[('sluice', 'history')]))} on "
                    f"{backend}" for backend, samples in results.items())
        + "; MLflow keeps no history of alias moves (only where each alias points now), "
        "so it has no counterpart")
    if "PostgreSQL" not in results:
        section.findings.append(postgres_note)
    section.notes.append(
        "¹ sluice opens SQLite in WAL mode with synchronous=NORMAL: a commit reaches the "
        "disk (fsync) at the next checkpoint, not at once, so a power cut or an OS crash "
        "may lose the last commits (the file is never corrupted; a killed process loses "
        "nothing). MLflow leaves SQLite's defaults (rollback journal, synchronous=FULL: "
        "fsyncs on every commit). The rows marked ¹ rerun both on fresh files with "
        "sluice's connections set to synchronous=FULL (WAL: the log is fsynced on every "
        "commit), as durable as MLflow's, so what is left is the registries' own work. On "
        "PostgreSQL both commit durably (the server's default, synchronous_commit=on).")
    return section


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--mlflow-worker":
        mlflow_worker(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=OPS, help="timed calls per operation")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    bench(args.ops, with_postgres=not args.no_postgres).print()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
