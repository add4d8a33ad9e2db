"""An audit hook that records any file-system write outside allowed folders.

Used by the test suite (in-process and, through sitecustomize, in every Python
subprocess) so that no test writes outside its temporary folder.
"""

from __future__ import annotations

import os
import sys
from typing import Any

_WRITE_EVENTS = {
    "os.remove": 0, "os.rmdir": 0, "os.mkdir": 0, "os.rename": (0, 1),
    "os.replace": (0, 1), "os.symlink": 1, "os.link": 1, "os.chmod": 0,
    "os.truncate": 0, "os.utime": 0, "shutil.rmtree": 0, "shutil.copyfile": 1,
}
# Where an event's `dir_fd` argument sits: paths are then relative to that folder
# (shutil.rmtree removes entries this way).
_DIR_FD = {"os.remove": {0: 1}, "os.rmdir": {0: 1}, "os.mkdir": {0: 2},
           "os.rename": {0: 2, 1: 3}, "os.replace": {0: 2, 1: 3}, "os.chmod": {0: 2},
           "os.utime": {0: 3}}
_ALWAYS_OK = ("/dev/", "/proc/")
_state: dict[str, Any] = {"roots": None, "log": None, "violations": []}


def _absolute(path: Any, dir_fd: Any = None) -> str | None:
    if isinstance(path, int):
        return None  # a file descriptor: its open() was already checked
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str | os.PathLike):
        return None
    text = os.fspath(path)
    if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(text):
        try:
            text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
        except OSError:
            return None
    return os.path.realpath(text)


def _allowed(path: str) -> bool:
    roots = _state["roots"]
    if roots is None or path.startswith(_ALWAYS_OK):
        return True
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _record(event: str, path: str) -> None:
    message = f"{event}: {path}"
    _state["violations"].append(message)
    log = _state["log"]
    if log:
        _state["roots"], roots = None, _state["roots"]  # don't guard our own log write
        try:
            with open(log, "a") as handle:
                handle.write(f"[pid {os.getpid()}] {message}\n")
        finally:
            _state["roots"] = roots


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if _state["roots"] is None:
        return
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        if writing and (resolved := _absolute(path)) and not _allowed(resolved):
            _record(event, resolved)
        return
    positions = _WRITE_EVENTS.get(event)
    if positions is None:
        return
    dir_fds = _DIR_FD.get(event, {})
    for pos in positions if isinstance(positions, tuple) else (positions,):
        if pos >= len(args):
            continue
        fd_pos = dir_fds.get(pos)
        dir_fd = args[fd_pos] if fd_pos is not None and fd_pos < len(args) else None
        if (resolved := _absolute(args[pos], dir_fd)) and not _allowed(resolved):
            _record(event, resolved)


def install(roots: list[str] | None, log: str | None = None) -> None:
    _state["log"] = log
    set_roots(roots)
    sys.addaudithook(_hook)


def set_roots(roots: list[str] | None) -> None:
    _state["roots"] = [os.path.realpath(r) for r in roots] if roots else None


def take_violations() -> list[str]:
    found, _state["violations"] = _state["violations"], []
    return found
