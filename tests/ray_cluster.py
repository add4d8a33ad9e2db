"""A real two-node Ray cluster for the tests that run stages on Ray.

``start_cluster`` runs ``ray start --head`` (2 CPUs, the Jobs API on a free port) and
a second node joining it (1 CPU, its own temp dir), each with its own free ports so
that it never collides with another cluster on the machine. Ray puts Unix sockets
under its temp dir, whose paths must stay under 107 bytes: the dirs are short ones
under /tmp (``/tmp/srXXXX/h``), outside every test's tmp_path, so tests/conftest.py
lets the write guard allow them explicitly. Workers run the sluice under test: the
cluster's environment puts this checkout's ``src`` first on PYTHONPATH and the venv's
``bin`` first on PATH (the cluster's own environment, as on a real cluster).

``Cluster.stop`` does not use ``ray stop``, which stops every Ray process of the
machine's user (another cluster too): it stops the processes whose command line
names this cluster's temp dir, which only this cluster's processes do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RAY = Path(sys.executable).parent / "ray"
START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ports(worker_range: int = 40) -> list[str]:
    """Every port a Ray node listens on, free ones, so clusters never collide."""
    low = free_port()
    while low + worker_range > 65000:
        low = free_port()
    return ["--node-manager-port", str(free_port()), "--object-manager-port", str(free_port()),
            "--metrics-export-port", str(free_port()),
            "--dashboard-agent-listen-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port())]


@dataclass
class Cluster:
    root: Path  # the short temp dir holding both nodes' temp dirs
    gcs: str = ""  # host:port of the head's GCS
    address: str = ""  # http://host:port of the Jobs API
    env: dict[str, str] = field(default_factory=dict)
    workers: int = 1  # nodes joining the head (0: a single-node cluster)

    def start(self) -> None:
        head_port, dash_port = free_port(), free_port()
        self.gcs, self.address = f"127.0.0.1:{head_port}", f"http://127.0.0.1:{dash_port}"
        self._ray("start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(head_port),
                  "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash_port),
                  "--ray-client-server-port", str(free_port()), "--num-cpus", "2",
                  "--include-dashboard", "true", "--temp-dir", str(self.root / "h"),
                  "--disable-usage-stats", *_ports())
        for attempt in range(3 if self.workers else 0):  # a port may be taken meanwhile
            try:
                # Its own address: Ray finds a job's log by its node's IP.
                self._ray("start", "--address", self.gcs, "--node-ip-address", "127.0.0.2",
                          "--num-cpus", "1", "--temp-dir", str(self.root / "w"),
                          "--disable-usage-stats", *_ports())
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.jobs_api_up():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Ray Jobs API at {self.address} did not come up")
            time.sleep(1)

    def _ray(self, *args: str) -> None:
        done = subprocess.run([str(RAY), *args], env=self.env, capture_output=True, text=True,
                              timeout=START_TIMEOUT_S, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"ray {' '.join(args[:2])} failed ({done.returncode}):\n"
                               f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def jobs_api_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/api/version", timeout=5) as reply:
                return bool(reply.status == 200)
        except OSError:
            return False

    def pids(self) -> list[int]:
        """This cluster's processes: those whose command line names its temp dir."""
        marker = str(self.root).encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                found.append(int(entry))
        return found

    def stop(self, remove: bool = True) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 10
            while pids and time.monotonic() < deadline:
                time.sleep(0.2)
                pids = self.pids()
            if not pids:
                break
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(workers: int = 1) -> Cluster:
    root = Path(tempfile.mkdtemp(prefix="sr", dir="/tmp"))
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update({
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
        "PYTHONPATH": str(REPO / "src"),  # no write guard in the cluster's own processes
        "HOME": str(root), "TMPDIR": str(root),
        "RAY_USAGE_STATS_ENABLED": "0", "PYTHONDONTWRITEBYTECODE": "1"})
    cluster = Cluster(root, env=env, workers=workers)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        raise
    return cluster
