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

Longer than most modules (about 430 lines) on purpose: the keep rule, stratified
sampling and the sampled files must agree row for row with the SDK's in-memory
sampling, so they are kept in one place.
"""

from __future__ import annotations

import datetime
import json
import math
import numbers
import shutil
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xxhash

from sluice.errors import UsageError
from sluice.util.fs import atomic_dir, atomic_path
from sluice.util.suggest import closest

_SPACE = 2**64
_NULL = object()  # the one stratum label of every missing value


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
    close = closest(str(column), names)
    hint = f"did you mean `{close}`? " if close else ""
    shown = ", ".join(names[:50]) + (", …" if len(names) > 50 else "") if names else "(none)"
    return UsageError(f"{role} column `{column}` is not in {where}; its columns are: {shown}",
                      hint=f"{hint}pass {role}= one of the columns above")


# --------------------------------------------------------------------------- files

@dataclass
class _Part:
    """A block of rows of one data file in its own form, to hash and copy rows from."""

    data: Any  # text DataFrame (csv), Arrow RecordBatch (parquet), raw lines (jsonl)
    records: list[dict[str, Any]] | None  # jsonl only
    rows: int

    def column(self, name: str) -> list[object]:
        if self.records is not None:
            return [record.get(name) for record in self.records]
        if hasattr(self.data, "schema"):  # an Arrow batch
            return list(self.data.column(name).to_pylist())
        return list(self.data[name].tolist())


def _need(module: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise UsageError(f"sampling files needs the `{module}` package, which is not installed",
                         hint="pip install pandas pyarrow") from None


def _parts(path: Path, fmt: str, columns: list[str] | None = None) -> Iterator[_Part]:
    """The rows of one file, a block at a time, through the shared reader."""
    from sluice.data.validation import readers

    if fmt == "csv":
        _need("pandas")
        for frame in readers.csv_frames(path, columns, readers.CHUNK_ROWS, text=True):
            yield _Part(frame, None, len(frame))
    elif fmt == "parquet":
        _need("pyarrow")
        for batch in readers.arrow_batches(path, columns, readers.CHUNK_ROWS):
            yield _Part(batch, None, batch.num_rows)
    else:
        for lines, records in readers.json_lines(path, readers.CHUNK_ROWS):
            yield _Part(lines, records, len(lines))


class _Hasher:
    """Key hashes (and stratum labels) of one file's blocks; checks the columns exist."""

    def __init__(self, path: Path, fmt: str, key: list[str], stratify: str | None,
                 seed: int) -> None:
        from sluice.data.validation.readers import header

        self.path, self.key, self.stratify, self.seed = path, key, stratify, seed
        self.wanted = [(k, "key") for k in key] + ([(stratify, "stratify")] if stratify else [])
        self.seen: dict[str, None] = {}  # JSON lines: the columns of the objects read
        names = header(path, fmt) if fmt != "jsonl" else None
        if names is not None:
            self._check(names)

    def _check(self, names: list[str]) -> None:
        for name, role in self.wanted:
            if name not in names:
                raise missing_column(f"`{self.path}`", name, names, role)

    def __call__(self, part: _Part) -> tuple[list[int], list[Hashable] | None]:
        for record in part.records or ():
            self.seen.update(dict.fromkeys(record))
        keys = composite_keys([part.column(k) for k in self.key])
        strata = None if self.stratify is None else \
            [stratum_label(s) for s in part.column(self.stratify)]
        return key_hashes(keys, self.seed), strata

    def done(self) -> None:
        """JSON lines have no header: a column no object had is known missing at the end."""
        if self.seen:
            self._check(list(self.seen))


class _Writer:
    """Kept rows of one file, written block by block in the file's format."""

    def __init__(self, fmt: str, dst: Path) -> None:
        self.fmt, self.dst = fmt, dst
        self.sink: Any = None

    def write(self, part: _Part, keep: list[bool]) -> None:
        if self.fmt == "csv":
            import numpy as np

            part.data[np.asarray(keep, dtype=bool)].to_csv(
                self.dst, index=False, mode="w" if self.sink is None else "a",
                header=self.sink is None)
            self.sink = True
        elif self.fmt == "parquet":
            import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
            import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

            if self.sink is None:
                self.sink = pq.ParquetWriter(self.dst, part.data.schema)
            self.sink.write_batch(part.data.filter(pa.array(keep, type=pa.bool_())))
        else:
            if self.sink is None:
                self.sink = open(self.dst, "wb")  # noqa: SIM115 - closed in close()
            self.sink.write(b"".join(line if line.endswith(b"\n") else line + b"\n"
                                     for line, k in zip(part.data, keep, strict=True) if k))

    def close(self) -> None:
        if self.sink is not None and self.sink is not True:
            self.sink.close()


def _sample_file(path: Path, fmt: str, dst: Path, fraction: float, key: list[str],
                 seed: int, keep: list[bool] | None) -> int:
    """Write the kept rows of ``path`` to ``dst``; ``keep`` is given for stratified samples."""
    hasher = _Hasher(path, fmt, key, None, seed)
    rows = kept = 0
    with atomic_path(dst) as tmp:
        writer = _Writer(fmt, tmp)
        try:
            for part in _parts(path, fmt):
                if keep is None:
                    flags = keep_flags(hasher(part)[0], fraction)
                else:
                    flags = keep[rows:rows + part.rows]
                    if len(flags) != part.rows:
                        raise _changed(path)
                writer.write(part, flags)
                rows += part.rows
                kept += sum(flags)
        finally:
            writer.close()
        hasher.done()
        if keep is not None and rows != len(keep):
            raise _changed(path)
        if kept == rows:
            shutil.copyfile(path, tmp)  # all rows kept: the file, byte for byte
    return kept


def _changed(path: Path) -> UsageError:
    return UsageError(f"`{path}` changed while it was being sampled",
                      hint="run again once nothing is writing to it")


def _stratified_keeps(files: list[Path], fmt: str, fraction: float, key: list[str],
                      stratify: str, seed: int) -> list[list[bool]]:
    """Each file's keep flags, with the ≥ 1-row fallback over every file's strata.

    Only the key and stratum columns are read, so memory is one hash and one
    label a row, not the data.
    """
    hashes: list[int] = []
    strata: list[Hashable] = []
    spans = []
    for path in files:
        hasher = _Hasher(path, fmt, key, stratify, seed)
        start = len(hashes)
        for part in _parts(path, fmt, [*key, stratify]):
            h, s = hasher(part)
            hashes += h
            strata += s or []
        hasher.done()
        spans.append((start, len(hashes)))
    flags = keep_flags(hashes, fraction, strata)
    return [flags[start:end] for start, end in spans]


def materialise_sample(src: Path, dst: Path, fraction: float, key: str | Sequence[str],
                       stratify: str | None = None, seed: int = 0, fmt: str = "auto") -> int:
    """Write the rows of ``src`` that ``fraction`` keeps to ``dst``; return how many.

    ``src`` is a CSV, Parquet or JSON-lines file, or a folder of such partitions
    (written to the folder ``dst`` with the same layout); which files count and
    their format (``fmt``, else by extension) follow the shared reader's rules
    (:mod:`sluice.data.validation.readers`, docs/data.md). Rows are chosen by
    ``key`` (a column, or several for a composite key) with the rule in this
    module's docstring; with ``stratify`` the ≥ 1-row guarantee holds per stratum
    over the whole dataset, not per partition. Files are read a block of rows at a
    time. The output has the input's format and is replaced atomically. CSV cells
    are read and written as text, so values survive unchanged; JSON lines are
    copied verbatim.
    """
    from sluice.data.validation.readers import format_of, partitions

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
    files, found = partitions(src, fmt)
    if not src.is_dir():
        dst_fmt = format_of(dst)
        if dst_fmt is not None and dst_fmt != found:
            raise UsageError(f"`{dst}` names {dst_fmt} but `{src}` is {found}; a sample keeps "
                             "its source's format", hint=f"give `{dst.name}` the extension "
                             f"{src.suffix}")
        keep = None if stratify is None else \
            _stratified_keeps(files, found, fraction, keys, stratify, seed)[0]
        return _sample_file(src, found, dst, fraction, keys, seed, keep)
    keeps: list[list[bool] | None] = [None] * len(files)
    if stratify is not None:
        keeps = list(_stratified_keeps(files, found, fraction, keys, stratify, seed))
    total = 0
    with atomic_dir(dst) as tmp:
        for path, keep in zip(files, keeps, strict=True):
            out = tmp / path.relative_to(src)
            total += _sample_file(path, found, out, fraction, keys, seed, keep)
    return total
