"""Unit: DVC's cache objects read back (both layouts, md5-checked) and its remote's URL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sluice.config.lockfile import DVC_PREFIX, DataPin, parse_lock, render_lock
from sluice.data.dvc_import import dvc_remote_url, materialise
from sluice.errors import ConfigError, DataInvalid, SluiceError
from sluice.util.dvc_md5 import MD5, MD5_DOS2UNIX


def _put(base: Path, data: bytes, digest: str | None = None, *, dvc2: bool = False) -> str:
    digest = digest or hashlib.md5(data).hexdigest()
    folder = base if dvc2 else base / "files" / "md5"
    (folder / digest[:2]).mkdir(parents=True, exist_ok=True)
    (folder / digest[:2] / digest[2:]).write_bytes(data)
    return digest


def test_dvc2_layout_with_dos2unix_md5(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    raw = b"a,b\r\n1,2\r\n"
    digest = _put(cache, raw, hashlib.md5(raw.replace(b"\r\n", b"\n")).hexdigest(), dvc2=True)
    pin = DataPin("data/x.csv", DVC_PREFIX + digest, algorithm=MD5_DOS2UNIX, source="x.dvc")
    assert materialise(pin, [cache], tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_bytes() == raw  # DVC keeps the bytes as they were


def test_folder_listing_is_checked_and_paths_validated(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    rows = [{"md5": _put(cache, b"x"), "relpath": "../escape.txt"}]
    listing = json.dumps(rows, sort_keys=True).encode()
    digest = _put(cache, listing, hashlib.md5(listing).hexdigest() + ".dir")
    pin = DataPin("data/d", DVC_PREFIX + digest, algorithm=MD5, source="d.dvc")
    with pytest.raises(SluiceError, match="climbs out of its folder"):
        materialise(pin, [cache], tmp_path / "d")
    assert not (tmp_path / "escape.txt").exists()
    (cache / "files/md5" / digest[:2] / digest[2:]).write_bytes(b"[]")  # not what it names
    with pytest.raises(DataInvalid, match="does not match"):
        materialise(pin, [cache], tmp_path / "d")


def test_missing_object_is_false(tmp_path: Path) -> None:
    pin = DataPin("a", DVC_PREFIX + "0" * 32, algorithm=MD5, source="a.dvc")
    assert materialise(pin, [tmp_path], tmp_path / "a") is False


def test_remote_url_relative_to_the_dvc_folder(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc/config").write_text(
        "[core]\n    remote = store\n['remote \"store\"']\n    url = ../../shared\n")
    assert dvc_remote_url(tmp_path) == "../shared"
    (tmp_path / ".dvc/config.local").write_text(
        "['remote \"store\"']\n    url = s3://bucket/dvc\n")
    assert dvc_remote_url(tmp_path) == "s3://bucket/dvc"


def test_lock_keeps_a_dvc_pin_and_refuses_a_bad_one() -> None:
    pin = DataPin("data/x.xml", DVC_PREFIX + "a" * 32, 5, 1, algorithm=MD5, remote="../dvc")
    text = render_lock({pin.path: pin})
    assert parse_lock(text) == {pin.path: pin}
    with pytest.raises(ConfigError, match="bad `algorithm`") as caught:
        parse_lock(text.replace("algorithm: md5", "algorithm: sha1"))
    entry = text.splitlines().index("  data/x.xml:") + 2  # its first line (1-based)
    assert caught.value.location is not None and caught.value.location.line == entry
