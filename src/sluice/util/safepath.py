"""Validating paths and digests that come out of a store, a record or the database.

The shared store is trusted for availability, never for paths: whoever can write
it could name ``../../.bashrc`` in a run record or a folder manifest, or swap an
object's bytes. So before anything is written, every such path passes
:func:`relative_path` (its text) and :func:`target_inside` (where it lands on
disk: inside the destination, through no symbolic link), and every digest passes
:func:`check_digest` before it becomes a file name or an object key. A failure is
:class:`~sluice.errors.CorruptObject` (exit 1); a symbolic link in the workspace
on the way is the user's setup, not corruption, and is a :class:`ConfigError`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sluice.errors import ConfigError, CorruptObject

# xxh3-128 as 32 hex digits; folder manifests carry ".dir".
_DIGEST = re.compile(r"[0-9a-f]{32}(?:\.dir)?")
_DRIVE = re.compile(r"[A-Za-z]:")
_TAMPERED_HINT = ("the store was written by something other than sluice, or tampered with; "
                  "delete the record or object there and rerun the stage with --force")


def path_problem(text: object) -> str | None:
    """Why ``text`` is not a clean relative POSIX path, or None when it is one."""
    if not isinstance(text, str) or not text:
        return "is empty or not text"
    if "\x00" in text:
        return "contains a NUL character"
    if "\\" in text:
        return "contains a backslash"
    if text.startswith("/"):
        return "is absolute"
    if _DRIVE.match(text):
        return "starts with a drive letter"
    parts = text.split("/")
    if ".." in parts:
        return "climbs out of its folder with `..`"
    if any(part in ("", ".") for part in parts):
        return "has an empty or `.` component"
    return None


def relative_path(text: object, what: str) -> str:
    """``text`` when it is a clean relative path; :class:`CorruptObject` otherwise."""
    problem = path_problem(text)
    if problem is not None:
        raise CorruptObject(f"{what} names the path {text!r}, which {problem}; "
                            "nothing was written", hint=_TAMPERED_HINT)
    assert isinstance(text, str)
    return text


def check_digest(digest: object, what: str = "an object") -> str:
    """``digest`` when it is an xxh3-128 digest (``.dir`` for a manifest)."""
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise CorruptObject(f"{what} names the digest {digest!r}, which is not a sluice "
                            "content hash; nothing was read or written", hint=_TAMPERED_HINT)
    return digest


def first_link(root: Path, rel: str, *, include_last: bool = True) -> Path | None:
    """The first symbolic link on the way from ``root`` to ``root/rel`` (``root`` itself
    is the caller's choice and not checked), or None."""
    parts = rel.split("/")
    if not include_last:
        parts = parts[:-1]
    current = root
    for part in parts:
        current = current / part
        try:
            if os.lstat(current).st_mode & 0o170000 == 0o120000:
                return current
        except (FileNotFoundError, NotADirectoryError):
            return None  # nothing exists below a missing component
    return None


def link_text(link: Path) -> str:
    try:
        return f"`{link}` → `{os.readlink(link)}`"
    except OSError:
        return f"`{link}`"


def target_inside(root: Path, rel: object, what: str,
                  reserved: tuple[str, ...] = ()) -> Path:
    """Where ``rel`` (read from a store, record or database) lands under ``root``.

    The text must be a clean relative path, not under a ``reserved`` top folder,
    and no existing folder on the way may be a symbolic link (a link as the last
    component is replaced, never followed, by the atomic rename that writes it).
    """
    text = relative_path(rel, what)
    top = text.split("/", 1)[0]
    if top in reserved:
        raise CorruptObject(f"{what} names the path {text!r}, inside `{top}/`, which "
                            "sluice never writes; nothing was written", hint=_TAMPERED_HINT)
    link = first_link(root, text, include_last=False)
    if link is not None:
        raise ConfigError(f"{what}: writing `{text}` would go through the symbolic link "
                          f"{link_text(link)}; nothing was written",
                          hint="replace the link with a real folder (sluice never writes "
                               "through links)")
    target = root / text
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(target.parent)]) != real_root:
        raise CorruptObject(f"{what}: `{text}` resolves outside {root}; nothing was written",
                            hint=_TAMPERED_HINT)
    return target
