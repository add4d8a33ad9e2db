"""Data pointers: ``sluice.lock`` (sluice's own) and DVC's ``.dvc`` / ``dvc.lock`` files.

Data too large for git is pinned by content hash in a committed ``sluice.lock``,
so that a data change is a git change. Repositories that already use DVC keep
working: their pointer files are read as the same kind of pin, with the
algorithm DVC used (``hash: md5`` for DVC 3, the dos2unix md5 of DVC 2 where
an entry has no ``hash:``), so the workspace can be checked against them
(:mod:`sluice.util.dvc_md5`).
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from sluice.errors import ConfigError, Location
from sluice.util.dvc_md5 import MD5, MD5_DOS2UNIX

if TYPE_CHECKING:
    from pathlib import Path

LOCK_FILE = "sluice.lock"
DVC_PREFIX = "dvc-md5:"  # a DVC pin's hash: this prefix and DVC's own digest
XXH3 = "xxh3"  # sluice's own hash (sluice.util.hashing)
EXTERNAL = "external"  # a DVC etag/checksum of data elsewhere: not checked in the workspace
LOCK_HEADER = ("# sluice.lock: data pinned by content hash (xxh3-128).\n"
               "# Written by `sluice data add`; commit it. Restore with `sluice data checkout`.\n")


class DataPin(NamedTuple):
    """One pinned file or directory (a NamedTuple: see :class:`sluice.errors.Location`)."""

    path: str
    hash: str
    size: int = 0
    nfiles: int = 1
    source: str = LOCK_FILE  # which file pins it, for messages ("sluice.lock", "x.dvc")
    algorithm: str = XXH3  # how ``hash`` was computed: xxh3, md5, md5-dos2unix, external
    remote: str | None = None  # a DVC pin not yet imported: the DVC remote that holds it

    @property
    def from_dvc(self) -> bool:
        return self.source != LOCK_FILE


# The exact form render_lock writes, for paths and values YAML reads as these very
# strings (no quotes, not a number, bool, null or date): read without yaml.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*", re.ASCII)
_PLAIN_HASH = re.compile(r"[0-9a-f]{32}(?:\.dir)?", re.ASCII)
_PLAIN_INT = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_YAML_WORDS = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"}


def _parse_plain_lock(text: str) -> dict[str, DataPin] | None:
    """The pins of a lock file exactly as render_lock writes it; None for anything else."""
    lines = [line for line in text.split("\n") if not line.startswith("#")]
    if lines[-1:] == [""]:
        lines.pop()
    if lines[:1] != ["version: 1"]:
        return None
    if lines[1:] == ["data: {}"]:
        return {}
    body = lines[2:]
    if lines[1:2] != ["data:"] or not body or len(body) % 4:
        return None
    pins = {}
    for at in range(0, len(body), 4):
        head, digest, size, nfiles = body[at:at + 4]
        path = head[2:-1]
        if head[:2] != "  " or head[-1:] != ":" or not _PLAIN_KEY.fullmatch(path) or \
                path.lower() in _YAML_WORDS or path in pins or \
                not digest.startswith("    hash: ") or \
                not _PLAIN_HASH.fullmatch(digest[10:]) or \
                not size.startswith("    size: ") or not _PLAIN_INT.fullmatch(size[10:]) or \
                not nfiles.startswith("    nfiles: ") or \
                not _PLAIN_INT.fullmatch(nfiles[12:]):
            return None
        pins[path] = DataPin(path, digest[10:], int(size[10:]), int(nfiles[12:]))
    return pins


def in_dvc_repository(root: Path) -> bool:
    """Whether ``root`` is in a DVC repository: a ``.dvc/`` folder here or above, where
    DVC itself looks. Elsewhere its pointer files mean nothing to DVC, nor to sluice."""
    return any(os.path.isdir(os.path.join(folder, ".dvc")) for folder in (root, *root.parents))


def parse_lock(text: str | None) -> dict[str, DataPin]:
    """The pins in a ``sluice.lock``'s text (None: no lock file)."""
    if text is None:
        return {}
    plain = _parse_plain_lock(text)
    if plain is not None:  # as sluice wrote it: no need for yaml
        return plain
    from sluice.util.yamlsource import parse_yaml  # only here: a status never needs it

    source = parse_yaml(text, LOCK_FILE)
    data = source.data
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("data", {}), dict):
        raise ConfigError(f"{LOCK_FILE} must hold `data:` mapping paths to hashes",
                          location=source.locate(()),
                          hint=f"regenerate it with `sluice data add PATH`, or restore it "
                               f"from git: `git checkout -- {LOCK_FILE}`")
    pins: dict[str, DataPin] = {}
    for path, entry in (data.get("data") or {}).items():
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            raise ConfigError(f"entry `{path}` in {LOCK_FILE} has no `hash`",
                              location=source.locate(("data", path)),
                              hint=f"run `sluice data add {path}` to re-pin it")
        # A pin imported from DVC whose bytes were not at hand: DVC's md5 and its remote.
        dvc = entry["hash"].startswith(DVC_PREFIX)
        algorithm, remote = entry.get("algorithm", MD5), entry.get("dvc_remote")
        if dvc and (algorithm not in (MD5, MD5_DOS2UNIX) or
                    not isinstance(remote, str | None)):
            raise ConfigError(f"entry `{path}` in {LOCK_FILE} has a DVC pin with a bad "
                              "`algorithm` or `dvc_remote`",
                              location=source.locate(("data", path)),
                              hint=f"`algorithm:` is {MD5} or {MD5_DOS2UNIX}; rerun `sluice "
                                   "init --from-dvc --force`, or restore it from git")
        pins[str(path)] = DataPin(str(path), entry["hash"], int(entry.get("size", 0)),
                                  int(entry.get("nfiles", 1)),
                                  algorithm=algorithm if dvc else XXH3,
                                  remote=remote if dvc else None)
    return pins


def render_lock(pins: dict[str, DataPin]) -> str:
    body = {"version": 1, "data": {
        p.path: {"hash": p.hash, "size": p.size, "nfiles": p.nfiles,
                 **({"algorithm": p.algorithm} if p.algorithm != XXH3 else {}),
                 **({"dvc_remote": p.remote} if p.remote else {})}
        for p in sorted(pins.values(), key=lambda p: p.path)}}
    import yaml  # only when writing: reading goes through yamlsource

    return LOCK_HEADER + yaml.safe_dump(body, sort_keys=False)


def _dvc_outs(text: str, file: str) -> list[dict[str, Any]]:
    from sluice.util.yamlsource import parse_yaml

    source = parse_yaml(text, file)
    data = source.data
    outs = data.get("outs") if isinstance(data, dict) else None
    if not isinstance(outs, list) or not all(isinstance(o, dict) for o in outs):
        raise ConfigError(f"{file} is not a valid DVC pointer file (no `outs:` list)",
                          location=Location(file, 1, 1),
                          hint=f"restore it from git (`git checkout -- {file}`) or re-create it "
                               "with `dvc add`")
    return outs


def _dvc_pin(out: dict[str, Any], folder: str, file: str) -> DataPin:
    digest = out.get("md5") or out.get("etag") or out.get("checksum")
    path = out.get("path")
    if not isinstance(path, str) or not isinstance(digest, str):
        raise ConfigError(f"{file} has an output without `path` and `md5`",
                          location=Location(file), hint="re-create it with `dvc add`")
    full = posixpath.normpath(posixpath.join(folder, path))
    if not isinstance(out.get("md5"), str) or "://" in path or full == ".." or \
            full.startswith(("/", "../")):
        algorithm = EXTERNAL  # cloud data, or a path outside the repository: not ours to read
    elif out.get("hash") == MD5:
        algorithm = MD5  # DVC 3: md5 of the raw bytes
    else:
        algorithm = MD5_DOS2UNIX  # written by DVC 2: text hashed with CRLF as LF
    return DataPin(full, DVC_PREFIX + digest, int(out.get("size") or 0),
                   int(out.get("nfiles") or 1), file, algorithm)


def parse_dvc_file(text: str, file: str) -> list[DataPin]:
    """Pins from one ``.dvc`` file (``file`` is its repo-relative path)."""
    folder = posixpath.dirname(file)
    return [_dvc_pin(out, folder, file) for out in _dvc_outs(text, file)]


def parse_dvc_lock(text: str, file: str = "dvc.lock") -> list[DataPin]:
    """Pins for the outputs recorded in a ``dvc.lock``."""
    from sluice.util.yamlsource import parse_yaml

    source = parse_yaml(text, file)
    stages = source.data.get("stages") if isinstance(source.data, dict) else None
    if not isinstance(stages, dict):
        raise ConfigError(f"{file} has no `stages:` mapping", location=Location(file, 1, 1),
                          hint="regenerate it with `dvc repro`, or restore it from git")
    folder = posixpath.dirname(file)
    pins = []
    for stage in stages.values():
        for out in (stage or {}).get("outs", []) if isinstance(stage, dict) else []:
            if isinstance(out, dict):
                pins.append(_dvc_pin(out, folder, file))
    return pins


def collect_pins(paths: list[str], read: Callable[[str], bytes | None]) -> dict[str, DataPin]:
    """Every pin at one revision: sluice.lock, then any ``*.dvc`` and ``dvc.lock`` among paths."""
    def text(path: str) -> str | None:
        raw = read(path)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{path} is not UTF-8 text", location=Location(path),
                              hint="restore it from git") from None

    pins: dict[str, DataPin] = {}
    for path in paths:
        if path.endswith(".dvc") and (content := text(path)) is not None:
            pins.update((p.path, p) for p in parse_dvc_file(content, path))
        elif posixpath.basename(path) == "dvc.lock" and (content := text(path)) is not None:
            pins.update((p.path, p) for p in parse_dvc_lock(content, path))
    pins.update(parse_lock(text(LOCK_FILE)))
    return pins
