"""The installed version and the code stamp that keys sluice's own caches."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import sluice
from sluice.util.version import code_stamp, installed_version
from tests.conftest import sluice as run_sluice


def test_the_version_is_the_installed_distributions() -> None:
    assert installed_version() is not None
    assert sluice.__version__ == installed_version()


def test_sluice_version_prints_it(tmp_path: Path) -> None:
    out = run_sluice(tmp_path, "--version").stdout
    assert out.strip() == f"sluice {installed_version()} (sluice-ml)"


def test_the_code_stamp_covers_every_source_file(tmp_path: Path) -> None:
    # The caches used to stamp a hand-kept list of modules that missed interpolate.py
    # and yamlsource.py: an upgrade that changed only those served a stale config.
    package = tmp_path / "sluice"
    shutil.copytree(Path(sluice.__file__).parent, package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = code_stamp(package)
    for module in ("config/interpolate.py", "util/yamlsource.py", "cli/main.py"):
        path = package / module
        path.write_text(path.read_text() + "# changed\n")
        code_stamp.cache_clear()  # computed once per process: a new process sees edits
        after = code_stamp(package)
        assert after != before, module
        before = after
    # An edit that keeps the size still changes the stamp (mtime).
    path = package / "errors.py"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    code_stamp.cache_clear()
    assert code_stamp(package) != before
