"""Helpers for tests that watch processes: is one alive, wait for a condition."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def wait_for(predicate: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds (a hang, not a speed)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:  # a hang: fail rather than wait forever
            pytest.fail(f"timed out waiting {what}".rstrip())
        time.sleep(0.05)
