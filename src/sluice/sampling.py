"""Deterministic sampling for smoke runs: which rows a fraction keeps, and sampled files.

A row is kept when a stable hash of its *key* falls under the fraction:

    keep(key) ⇔ xxh3_64(canonical_bytes(key), seed) < floor(fraction · 2⁶⁴)

The decision depends on nothing but the key, the fraction and the seed, so a
sample is the same in every run, process and machine; appending rows never
changes the decision for old rows (the old sample is a subset of the new one);
a smaller fraction keeps a subset of a larger one; and two tables sampled by the
same key and seed keep the same keys, so joins still match in a smoke run.

Canonical bytes of a key (what is hashed, so that a key reads the same from
CSV, Parquet, JSON lines or a DataFrame):

- ``str``: its UTF-8 bytes; ``bytes``: as they are
- an integer (also NumPy's): its decimal digits, e.g. ``42`` → ``b"42"`` (so the
  int ``42`` and the string ``"42"`` are the same key)
- a float: an integral one as an integer (``42.0`` → ``b"42"``, so an integer
  column that picked up a missing value reads the same), any other as
  ``repr`` (``0.5`` → ``b"0.5"``)
- ``None``, NaN, ``pd.NA`` and ``NaT``: empty bytes (same as ``""``)
- ``bool``: ``b"True"`` / ``b"False"``; dates and times: ISO 8601
- lists and dicts (JSON values): compact JSON with sorted keys
- a tuple (a composite key, from several columns or a MultiIndex): the parts'
  canonical bytes, each prefixed by its length as 4 little-endian bytes
- anything else: ``str(value)`` in UTF-8

Stratified sampling (``stratify``) applies the same per-row rule inside each
stratum, so each stratum keeps ≈ ``fraction`` of its rows; a stratum that has
rows but of which the rule keeps none keeps instead the row(s) whose hash is the
smallest in that stratum (every row of that one key). That fallback row is the
one exception to "old sample ⊆ new sample": an appended row with a smaller hash
takes its place.

pandas and pyarrow are imported only inside the functions that read files or
frames; hashing plain keys needs neither.
"""

from __future__ import annotations

import contextlib
import datetime
import difflib
import json
import math
import numbers
import os
import shutil
import tempfile
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from sluice.errors import UsageError

_SPACE = 2**64
_NULL = object()  # the one stratum label of every missing value
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
            ".jsonl": "jsonl", ".ndjson": "jsonl"}


# --------------------------------------------------------------------------- keys and hashes

def canonical_bytes(value: object) -> bytes:
    """The bytes hashed for one key (see the module docstring for the rule)."""
    if type(value) is str:
        return value.encode("utf-8", "surrogatepass")
    if type(value) is int:
        return b"%d" % value
    if type(value) is bytes:
        return value
    return _canonical_other(value)


def _canonical_other(value: object) -> bytes:
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return b""
    if isinstance(value, tuple):
        return b"".join(len(part).to_bytes(4, "little") + part
                        for part in map(canonical_bytes, value))
    if isinstance(value, bool):
        return b"True" if value else b"False"
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, numbers.Integral):
        return b"%d" % int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return b""
        if number.is_integer():
            return b"%d" % int(number)
        return repr(number).encode()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat().encode()
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    item = getattr(value, "item", None)  # NumPy scalars: bool_, datetime64, …
    if callable(item) and type(value).__module__ == "numpy":
        native = item()
        if type(native) is not type(value):
            return canonical_bytes(native)
    return str(value).encode("utf-8", "surrogatepass")


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise UsageError(f"sampling seed must be an integer, got {seed!r}",
                         hint="pass seed=0 (or any non-negative integer)")
    value = int(seed)
    if not 0 <= value < _SPACE:
        raise UsageError(f"sampling seed must be between 0 and 2**64-1, got {value}",
                         hint="pass a non-negative integer such as 0")
    return value


def check_fraction(fraction: object, what: str = "fraction") -> float:
    """``fraction`` as a float in (0, 1], or UsageError."""
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise UsageError(f"{what} must be a number greater than 0 and at most 1, "
                         f"got {fraction!r}", hint="use e.g. 0.02 for a 2 % sample")
    value = float(fraction)
    if not 0.0 < value <= 1.0:  # also rejects NaN
        raise UsageError(f"{what} must be greater than 0 and at most 1, got {fraction!r}",
                         hint="use e.g. 0.02 for a 2 % sample, or 1 for all rows")
    return value


def key_hashes(keys: Iterable[object], seed: int = 0) -> list[int]:
    """The 64-bit hash of every key, in order."""
    digest = xxhash.xxh3_64_intdigest
    return [digest(k.encode("utf-8", "surrogatepass"), seed) if type(k) is str
            else digest(b"%d" % k, seed) if type(k) is int
            else digest(canonical_bytes(k), seed) for k in keys]


def threshold(fraction: float) -> int:
    """Hashes strictly below this are kept (``2**64`` keeps everything)."""
    return _SPACE if fraction >= 1.0 else int(fraction * _SPACE)


def stratum_label(value: object) -> Hashable:
    """A dict key for a stratum value; every kind of missing value is one stratum."""
    if type(value) is str or type(value) is int:
        return value
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return _NULL
    if isinstance(value, float) and math.isnan(value):
        return _NULL
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        return stratum_label(item())
    if not isinstance(value, Hashable):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def keep_flags(hashes: Sequence[int], fraction: float,
               strata: Sequence[Hashable] | None = None) -> list[bool]:
    """Which rows a ``fraction`` keeps; with ``strata`` (one label a row), ≥ 1 per stratum."""
    limit = threshold(fraction)
    keep = [h < limit for h in hashes]
    if strata is None or limit == _SPACE:
        return keep
    if len(strata) != len(hashes):
        raise UsageError(f"stratify has {len(strata)} labels for {len(hashes)} keys",
                         hint="pass one stratum label per key")
    served = {s for s, k in zip(strata, keep, strict=True) if k}
    smallest: dict[Hashable, int] = {}
    for s, h in zip(strata, hashes, strict=True):
        if s not in served and (s not in smallest or h < smallest[s]):
            smallest[s] = h
    if smallest:
        for i, (s, h) in enumerate(zip(strata, hashes, strict=True)):
            if smallest.get(s, -1) == h:
                keep[i] = True
    return keep


def sample_flags(keys: Iterable[object], fraction: float, seed: int = 0,
                 strata: Iterable[object] | None = None) -> list[bool]:
    """``keep_flags`` of ``keys`` after validating fraction and seed."""
    fraction, seed = check_fraction(fraction), check_seed(seed)
    hashes = key_hashes(keys, seed)
    labels = None if strata is None else [stratum_label(s) for s in strata]
    return keep_flags(hashes, fraction, labels)


def composite_keys(columns: Sequence[Sequence[object]]) -> list[object]:
    """One key per row: the single column's value, or the canonical bytes of the row's tuple.

    The bytes are what ``canonical_bytes`` gives for the tuple of the row's values
    (so a list of columns and a MultiIndex of the same columns hash alike), built
    column by column because that is several times faster.
    """
    if len(columns) == 1:
        return list(columns[0])
    prefixed = [[len(b).to_bytes(4, "little") + b for b in map(canonical_bytes, column)]
                for column in columns]
    return [b"".join(parts) for parts in zip(*prefixed, strict=True)]


def missing_column(where: str, column: object, available: Iterable[object],
                   role: str) -> UsageError:
    names = [str(c) for c in available]
    close = difflib.get_close_matches(str(column), names, n=1)
    hint = f"did you mean `{close[0]}`? " if close else ""
    shown = ", ".join(names[:50]) + (", …" if len(names) > 50 else "") if names else "(none)"
    return UsageError(f"{role} column `{column}` is not in {where}; its columns are: {shown}",
                      hint=f"{hint}pass {role}= one of the columns above")


# --------------------------------------------------------------------------- files

@dataclass
class _Table:
    """One data file read into memory, in a form that can be filtered and written back."""

    path: Path
    fmt: str
    data: Any  # DataFrame (csv), pyarrow Table (parquet), list of raw lines (jsonl)
    columns: list[str]
    rows: int
    records: list[dict[str, Any]] | None = None  # jsonl only

    def column(self, name: str, role: str) -> list[object]:
        if name not in self.columns and not (self.fmt == "jsonl" and self.rows == 0):
            raise missing_column(f"`{self.path}`", name, self.columns, role)
        if self.fmt == "csv":
            return list(self.data[name].tolist())
        if self.fmt == "parquet":
            return list(self.data.column(name).to_pylist())
        assert self.records is not None
        return [record.get(name) for record in self.records]

    def write(self, keep: list[bool], dst: Path) -> None:
        if self.fmt == "csv":
            import numpy as np

            self.data[np.asarray(keep, dtype=bool)].to_csv(dst, index=False)
        elif self.fmt == "parquet":
            import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
            import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

            pq.write_table(self.data.filter(pa.array(keep, type=pa.bool_())), dst)
        else:
            lines = [line for line, k in zip(self.data, keep, strict=True) if k]
            dst.write_bytes(b"".join(line if line.endswith(b"\n") else line + b"\n"
                                     for line in lines))


def _format_of(path: Path) -> str | None:
    return _FORMATS.get(path.suffix.lower())


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise UsageError(f"sampling files needs the `{module}` package, which is not installed",
                         hint="pip install pandas pyarrow") from None


def _read(path: Path, fmt: str, columns: list[str] | None = None) -> _Table:
    """Read a file; with ``columns`` only those (after checking they exist)."""
    if fmt == "csv":
        _need("pandas")
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]

        options: dict[str, Any] = {"dtype": str, "keep_default_na": False, "na_filter": False}
        try:
            header = [str(c) for c in pd.read_csv(path, nrows=0, **options).columns]
            wanted = None if columns is None else [c for c in header if c in columns]
            frame = pd.read_csv(path, usecols=wanted, **options)
        except pd.errors.EmptyDataError:
            raise UsageError(f"`{path}` is empty (not even a header row)",
                             hint="a CSV file to sample needs a header naming its columns") \
                from None
        except (pd.errors.ParserError, UnicodeDecodeError) as error:
            raise UsageError(f"`{path}` is not a readable CSV file: {error}",
                             hint="fix the file, or give it the extension of its format") \
                from None
        return _Table(path, fmt, frame, header, len(frame))
    if fmt == "parquet":
        _need("pyarrow")
        import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
        import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

        try:
            handle = pq.ParquetFile(path)
            names = [str(c) for c in handle.schema_arrow.names]
            table = handle.read(columns=None if columns is None
                                else [c for c in names if c in columns])
        except pa.ArrowException as error:
            raise UsageError(f"`{path}` is not a readable Parquet file: {error}",
                             hint="fix the file, or give it the extension of its format") \
                from None
        return _Table(path, fmt, table, names, table.num_rows)
    lines, records = [], []
    seen: dict[str, None] = {}
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as error:
                raise UsageError(f"line {number} of `{path}` is not valid JSON: {error}",
                                 hint="write one JSON object per line") from None
            if not isinstance(record, dict):
                raise UsageError(f"line {number} of `{path}` is not a JSON object",
                                 hint="write one JSON object per line") from None
            seen.update(dict.fromkeys(record))
            lines.append(line)
            records.append(record)
    return _Table(path, fmt, lines, list(seen), len(lines), records)


def _partitions(src: Path) -> list[Path]:
    """The data files under a directory (names starting with ``_`` or ``.`` are skipped)."""
    found = []
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part.startswith(("_", ".")) for part in rel.parts) or not path.is_file():
            continue
        if _format_of(path) is None:
            raise UsageError(f"`{path}` in the partitioned dataset `{src}` is not a "
                             "CSV, Parquet or JSON-lines file",
                             hint="move it out, or prefix its name with `_` to skip it")
        found.append(path)
    if not found:
        raise UsageError(f"`{src}` holds no data files to sample",
                         hint="partitions must end in .parquet, .pq, .csv, .jsonl or .ndjson")
    return found


@contextlib.contextmanager
def _atomic_file(dst: Path) -> Iterator[Path]:
    """A temporary path next to ``dst`` that replaces it when the block succeeds."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def _atomic_dir(dst: Path) -> Iterator[Path]:
    """A temporary folder next to ``dst`` that takes its place when the block succeeds."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if dst.is_dir() and not dst.is_symlink():
            old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
            os.replace(dst, old)  # an empty folder may be replaced by a folder
            os.replace(tmp, dst)
            _remove_tree(old)
        else:
            os.replace(tmp, dst)
    except BaseException:
        _remove_tree(tmp)
        raise


def _remove_tree(path: Path) -> None:
    """Delete a folder tree by absolute paths, ignoring errors.

    (``shutil.rmtree`` deletes by names relative to open folders, which the test
    suite's write guard cannot place.)
    """
    for root, dirs, files in os.walk(path, topdown=False):
        for name in files:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            with contextlib.suppress(OSError):
                os.unlink(full) if os.path.islink(full) else os.rmdir(full)
    with contextlib.suppress(OSError):
        os.rmdir(path)


def _hashes(table: _Table, key: list[str], stratify: str | None,
            seed: int) -> tuple[list[int], list[Hashable] | None]:
    keys = composite_keys([table.column(k, "key") for k in key])
    strata = None if stratify is None else \
        [stratum_label(s) for s in table.column(stratify, "stratify")]
    return key_hashes(keys, seed), strata


def _write_one(table: _Table, keep: list[bool], dst: Path) -> int:
    kept = sum(keep)
    with _atomic_file(dst) as tmp:
        if kept == table.rows:
            shutil.copyfile(table.path, tmp)  # all rows kept: the file, byte for byte
        else:
            table.write(keep, tmp)
    return kept


def materialise_sample(src: Path, dst: Path, fraction: float, key: str | Sequence[str],
                       stratify: str | None = None, seed: int = 0) -> int:
    """Write the rows of ``src`` that ``fraction`` keeps to ``dst``; return how many.

    ``src`` is a ``.csv``, ``.parquet``/``.pq`` or ``.jsonl``/``.ndjson`` file, or a
    folder of such partitions (written to the folder ``dst`` with the same layout;
    names starting with ``_`` or ``.`` are skipped). Rows are chosen by
    ``key`` (a column, or several for a composite key) with the rule in this
    module's docstring; with ``stratify`` the ≥ 1-row guarantee holds per stratum
    over the whole dataset, not per partition. The output has the input's format
    and is replaced atomically. CSV cells are read and written as text, so values
    survive unchanged; JSON lines are copied verbatim.
    """
    fraction, seed = check_fraction(fraction), check_seed(seed)
    src, dst = Path(src), Path(dst)
    keys = [key] if isinstance(key, str) else list(key)
    if not keys:
        raise UsageError("materialise_sample needs a key column", hint="pass key='id'")
    if not src.exists():
        raise UsageError(f"`{src}` does not exist", hint="check the path of the data to sample")
    if dst.exists() and dst.is_dir() != src.is_dir():
        raise UsageError(f"`{dst}` exists and is a {'folder' if dst.is_dir() else 'file'}, "
                         f"but `{src}` is a {'folder' if src.is_dir() else 'file'}",
                         hint="choose another destination, or delete it first")
    if src.is_dir():
        return _materialise_dir(src, dst, fraction, keys, stratify, seed)
    fmt = _format_of(src)
    if fmt is None:
        raise UsageError(f"cannot tell the format of `{src}` from its extension",
                         hint="use .csv, .parquet, .pq, .jsonl or .ndjson")
    dst_fmt = _format_of(dst)
    if dst_fmt is not None and dst_fmt != fmt:
        raise UsageError(f"`{dst}` names {dst_fmt} but `{src}` is {fmt}; a sample keeps "
                         "its source's format", hint=f"give `{dst.name}` the extension "
                         f"{src.suffix}")
    table = _read(src, fmt)
    hashes, strata = _hashes(table, keys, stratify, seed)
    return _write_one(table, keep_flags(hashes, fraction, strata), dst)


def _materialise_dir(src: Path, dst: Path, fraction: float, key: list[str],
                     stratify: str | None, seed: int) -> int:
    files = _partitions(src)
    keeps: dict[Path, list[bool]] = {}
    if stratify is not None:
        # First pass: only the key and stratum columns of every partition, so the
        # ≥ 1-row fallback sees each stratum whole.
        hashes: list[int] = []
        strata: list[Hashable] = []
        spans = []
        for path in files:
            table = _read(path, _format_of(path) or "", [*key, stratify])
            h, s = _hashes(table, key, stratify, seed)
            spans.append((path, len(hashes), len(hashes) + len(h)))
            hashes += h
            strata += s or []
        flags = keep_flags(hashes, fraction, strata)
        keeps = {path: flags[start:end] for path, start, end in spans}
    total = 0
    with _atomic_dir(dst) as tmp:
        for path in files:
            table = _read(path, _format_of(path) or "")
            if path in keeps:
                keep = keeps[path]
                if len(keep) != table.rows:
                    raise UsageError(f"`{path}` changed while it was being sampled",
                                     hint="run again once nothing is writing to it")
            else:
                keep = keep_flags(_hashes(table, key, None, seed)[0], fraction)
            out = tmp / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            total += _write_one(table, keep, out)
    return total
