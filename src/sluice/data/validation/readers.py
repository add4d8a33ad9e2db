"""The one reader of dataset files: CSV, Parquet and JSON lines, any size in bounded memory.

Validation, drift and sampling all read data through this module, so they agree
on which files of a folder count and on what a file holds. The rules (also in
docs/data.md, "Which files a dataset folder holds"):

- A folder is read as partitions, every file below it in path order. A file is
  skipped when any part of its path inside the folder starts with ``.`` or
  ``_`` (``_SUCCESS``, ``_temporary/``, ``.part-0.crc``), as Spark and Hive do.
- The format comes from the extension: ``.parquet``/``.pq``, ``.csv``,
  ``.jsonl``/``.ndjson``/``.json``. ``.json`` is JSON lines, one object per
  line, as Spark writes it; a JSON document (an array) fails at its first line.
- Any other file in the folder is an error naming it: silently skipping it
  would silently drop data. With an explicit ``format`` such files are read in
  that format (for ``part-00000`` files without an extension).
- One format per dataset: a folder whose extensions name two formats is refused.

Parquet is read batch by batch (``ParquetFile.iter_batches``), CSV with
``pandas.read_csv(chunksize=...)``, JSON lines a block of lines at a time.
Each format has a *native* chunk iterator (CSV cells as text, Arrow record
batches, raw JSON lines with their records) that sampling copies rows from,
and the typed :class:`Chunk` iterator that validation and drift use is built
on the same code. Anything unreadable (truncated Parquet, a CSV row with too
many fields, a broken JSON line) raises :class:`~sluice.errors.DataInvalid`
naming the file and, where known, the line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import DataInvalid

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

CHUNK_ROWS = 500_000
FORMATS = ("parquet", "csv", "jsonl")
EXTENSIONS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "jsonl",
              ".ndjson": "jsonl", ".json": "jsonl"}
_SKIPPED = (".", "_")  # _SUCCESS, .crc files and other markers beside partitions
_KNOWN = ", ".join(EXTENSIONS)


@dataclass(frozen=True)
class Chunk:
    """Rows ``offset .. offset+len(frame)`` of the whole data, read from ``file``.

    ``source_types`` maps each column to its stored type for typed formats
    (Parquet); it is None for text formats, whose values carry no type.
    """

    frame: pd.DataFrame
    file: Path
    offset: int
    source_types: dict[str, str] | None


def format_of(path: Path) -> str | None:
    return EXTENSIONS.get(path.suffix.lower())


def is_skipped(relative: Path) -> bool:
    """Whether a path inside a dataset folder is a marker or hidden file, not data."""
    return any(part.startswith(_SKIPPED) for part in relative.parts)


def partitions(path: Path, fmt: str = "auto") -> tuple[list[Path], str]:
    """The files that make up ``path`` (itself, or a folder's data files) and their format."""
    if not path.exists():
        raise DataInvalid(f"{path} does not exist",
                          hint="restore it with `sluice data checkout` or run the stage "
                               "that writes it")
    if not path.is_dir():
        found = fmt if fmt != "auto" else format_of(path)
        if found is None:
            raise DataInvalid(f"cannot tell the format of {path} from its extension",
                              hint=f"use one of {_KNOWN}, or set `format: parquet|csv|jsonl` "
                                   "on the dataset in sluice.yaml")
        return [path], found
    files = []
    for file in sorted(path.rglob("*")):
        if is_skipped(file.relative_to(path)) or not file.is_file():
            continue
        if fmt == "auto" and format_of(file) is None:
            raise DataInvalid(f"{file} in the dataset folder {path} is not a CSV, Parquet "
                              "or JSON-lines file",
                              hint="move it out, prefix its name with `_` or `.` to skip it, "
                                   "or set `format:` on the dataset to read every file as "
                                   "that format")
        files.append(file)
    if not files:
        raise DataInvalid(f"folder {path} holds no data files",
                          hint=f"partitions must end in {_KNOWN} (names starting with `_` "
                               "or `.` are skipped)")
    formats = {format_of(p) for p in files} - {None} | ({fmt} if fmt != "auto" else set())
    if len(formats) > 1:
        names = ", ".join(sorted(map(str, formats)))
        raise DataInvalid(f"folder {path} mixes formats ({names})",
                          hint="keep one format per dataset folder")
    return files, str(formats.pop())


def header(file: Path, fmt: str) -> list[str] | None:
    """The column names of one file, read from its header; None for JSON lines (no header)."""
    if fmt == "parquet":
        return [str(name) for name in _parquet_file(file).schema_arrow.names]
    if fmt == "csv":
        _refuse_empty_csv(file)
        try:
            with open(file, newline="", encoding="utf-8") as handle:
                return next(csv.reader(handle), [])
        except (UnicodeDecodeError, csv.Error) as exc:
            raise DataInvalid(f"{file} cannot be read as CSV: {exc}",
                              hint="check that it is UTF-8 CSV with a header row") from None
    return None


# --------------------------------------------------------------------------- Parquet

def _parquet_file(file: Path) -> Any:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    try:
        # pre_buffer would read ahead every row group: the whole file in memory.
        return pq.ParquetFile(file, pre_buffer=False)
    except (pa.ArrowException, OSError) as exc:
        raise _bad_parquet(file, exc) from None


def _bad_parquet(file: Path, exc: Exception) -> DataInvalid:
    size = file.stat().st_size if file.exists() else 0
    what = "is empty (0 bytes)" if size == 0 else f"is not a readable Parquet file ({exc})"
    return DataInvalid(f"{file} {what}",
                       hint="the file may be truncated or not Parquet at all: re-export "
                            "it, or restore it with `sluice data checkout`")


def arrow_batches(file: Path, columns: list[str] | None = None,
                  chunk_rows: int = CHUNK_ROWS) -> Iterator[Any]:
    """Arrow record batches of a Parquet file; a file without rows gives one empty batch."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]

    handle = _parquet_file(file)
    schema = handle.schema_arrow
    present = [c for c in columns if c in schema.names] if columns is not None else None
    try:
        rows = 0
        for batch in handle.iter_batches(batch_size=chunk_rows, columns=present):
            rows += batch.num_rows
            yield batch
        if rows == 0:  # no row groups: still the (empty) columns
            selected = pa.schema([schema.field(n) for n in present or schema.names],
                                 metadata=schema.metadata)
            yield pa.RecordBatch.from_pylist([], schema=selected)
    except (pa.ArrowException, OSError) as exc:
        raise _bad_parquet(file, exc) from None


def _parquet(file: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[Chunk]:
    offset = 0
    types: dict[str, str] | None = None
    for batch in arrow_batches(file, columns, chunk_rows):
        types = types or {f.name: str(f.type) for f in batch.schema}
        frame = batch.to_pandas(split_blocks=True, self_destruct=True)
        yield Chunk(frame, file, offset, types)
        offset += len(frame)


# --------------------------------------------------------------------------- CSV

def _refuse_empty_csv(file: Path) -> None:
    if file.stat().st_size == 0:
        raise DataInvalid(f"{file} is empty (0 bytes): a CSV file needs at least a header row",
                          hint="re-export the data with its header row")


def _refuse_ragged_rows(file: Path, shown: int = 5) -> None:
    """Raise DataInvalid if a row has fewer or more fields than the header.

    pandas reports a row with too many fields but silently pads one with too
    few; pyarrow's streaming parser sees both, in one quick pass that converts
    a single column.
    """
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.csv as pcsv  # type: ignore[import-untyped, unused-ignore]

    bad: list[tuple[int | None, int, int]] = []

    def note(row: object) -> str:
        bad.append((getattr(row, "number", None), getattr(row, "expected_columns", 0),
                    getattr(row, "actual_columns", 0)))
        return "skip"

    try:
        with open(file, newline="", encoding="utf-8") as handle:
            first = next(csv.reader(handle))[0]
        # In parallel first; only a file with ragged rows is read again, in one thread,
        # for their numbers (pyarrow does not know them when parsing in parallel).
        for threads in (True, False):
            bad.clear()
            reader = pcsv.open_csv(
                file, read_options=pcsv.ReadOptions(use_threads=threads, block_size=16 << 20),
                parse_options=pcsv.ParseOptions(invalid_row_handler=note,
                                                newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(include_columns=[first],
                                                    column_types={first: pa.string()}))
            for _ in reader:
                pass
            if all(number is not None for number, _, _ in bad):
                break
    except (pa.ArrowInvalid, OSError, IndexError, StopIteration, UnicodeDecodeError,
            csv.Error):
        return  # not for this check to say: the main reader reports unreadable files
    if bad:
        # pyarrow counts records from 1 at the header; results count data rows from 0.
        rows = ", ".join(f"row {number - 2} has {actual} field(s)" if number else
                         f"a row has {actual} field(s)" for number, _, actual in bad[:shown])
        more = f" and {len(bad) - shown} more ragged row(s)" if len(bad) > shown else ""
        raise DataInvalid(f"{file}: malformed CSV: {rows}{more}; the header has "
                          f"{bad[0][1]} (rows counted from 0 after the header)",
                          hint="every row needs as many fields as the header; quote fields "
                               "that contain commas")


def csv_frames(file: Path, columns: list[str] | None = None, chunk_rows: int = CHUNK_ROWS,
               text: bool = False) -> Iterator[pd.DataFrame]:
    """DataFrames of a CSV file; with ``text`` every cell as its text, nothing read as missing.

    Text cells are what sampling writes back, so values survive unchanged.
    """
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    _refuse_empty_csv(file)
    _refuse_ragged_rows(file)
    options: dict[str, Any] = ({"dtype": str, "keep_default_na": False, "na_filter": False}
                               if text else {"low_memory": False})
    try:
        usecols = (lambda c: c in columns) if columns is not None else None
        with pd.read_csv(file, chunksize=chunk_rows, usecols=usecols, **options) as reader:
            yield from reader
    except pd.errors.ParserError as exc:
        # pandas counts lines from the start of the file, across chunks.
        detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
        raise DataInvalid(f"{file}: malformed CSV: {detail}",
                          hint="every row needs as many fields as the header; quote fields "
                               "that contain commas") from None
    except (pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise DataInvalid(f"{file} cannot be read as CSV: {exc}",
                          hint="check that it is UTF-8 CSV with a header row") from None


def _csv(file: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[Chunk]:
    offset = 0
    for frame in csv_frames(file, columns, chunk_rows):
        yield Chunk(frame, file, offset, None)
        offset += len(frame)


# --------------------------------------------------------------------------- JSON lines

def json_lines(file: Path,
               chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[list[bytes], list[dict[str, Any]]]]:
    """Blocks of (raw line, its object) of a JSON-lines file; blank lines are left out."""
    line_no = 0
    with open(file, "rb") as handle:
        while lines := list(islice(handle, chunk_rows)):
            raw, records = [], []
            for i, line in enumerate(lines, start=line_no + 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line.decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise DataInvalid(f"{file}:{i}: not UTF-8 text ({exc.reason})",
                                      hint="save it as UTF-8 JSON lines") from None
                except json.JSONDecodeError as exc:
                    raise DataInvalid(f"{file}:{i}: not valid JSON ({exc.msg})",
                                      hint="each line must be one JSON object; the file may "
                                           "be truncated") from None
                if not isinstance(record, dict):
                    raise DataInvalid(f"{file}:{i}: a JSON line must be an object, not "
                                      f"{type(record).__name__}",
                                      hint="write one {\"column\": value, ...} per line")
                raw.append(line)
                records.append(record)
            line_no += len(lines)
            yield raw, records


def _jsonl(file: Path, columns: list[str] | None, chunk_rows: int) -> Iterator[Chunk]:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    offset = 0
    for _, records in json_lines(file, chunk_rows):
        frame = pd.DataFrame.from_records(records)
        if columns is not None:
            frame = frame[[c for c in columns if c in frame.columns]]
        yield Chunk(frame, file, offset, None)
        offset += len(frame)
    if offset == 0:
        yield Chunk(pd.DataFrame(), file, 0, None)


_READERS = {"parquet": _parquet, "csv": _csv, "jsonl": _jsonl}


def iter_parts(path: Path, fmt: str = "auto", columns: list[str] | None = None,
               chunk_rows: int = CHUNK_ROWS) -> Iterator[Chunk]:
    """Chunks of every file of ``path`` with global row offsets; see :class:`Chunk`."""
    files, found = partitions(path, fmt)
    reader = _READERS[found]
    offset = 0
    for file in files:
        for chunk in reader(file, columns, chunk_rows):
            frame = chunk.frame
            frame.index = _range(offset, len(frame))
            yield Chunk(frame, file, offset, chunk.source_types)
            offset += len(frame)


def _range(start: int, n: int) -> pd.RangeIndex:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    return pd.RangeIndex(start, start + n)


def iter_chunks(path: Path, fmt: str = "auto", columns: list[str] | None = None,
                chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """DataFrames of at most ``chunk_rows`` rows covering ``path``, indexed by global row.

    ``columns`` restricts the columns read (missing ones are left out). Raises
    DataInvalid for data that cannot be read.
    """
    for chunk in iter_parts(path, fmt, columns, chunk_rows):
        yield chunk.frame


__all__ = ["CHUNK_ROWS", "FORMATS", "Chunk", "arrow_batches", "csv_frames", "header", "is_skipped",
           "iter_chunks", "iter_parts", "json_lines", "partitions"]
