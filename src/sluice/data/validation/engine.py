"""Validate data of any size against a schema, chunk by chunk, in bounded memory.

Per chunk: missing and extra columns, the dtype check (:func:`checks.normalise`),
then pandera runs the value checks on the normalised chunk, whose index holds
global row numbers so that failures point at rows of the whole data. Across
chunks: uniqueness (:mod:`uniques`) and the row count. Failures are tallied per
(column, check): a count of failing rows and the first few examples.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.data.validation.checks import normalise, value_checks
from sluice.data.validation.readers import CHUNK_ROWS, Chunk, iter_parts
from sluice.data.validation.result import (
    DATASET,
    MAX_EXAMPLES,
    CheckFailure,
    Example,
    json_value,
)
from sluice.data.validation.schema_file import Schema
from sluice.data.validation.uniques import DuplicateFinder

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    import pandera.pandas as pa

CHECK_ORDER = ("required", "strict", "dtype", "nullable", "min", "exclusive_min", "max",
               "exclusive_max", "allowed", "regex", "unique", "rows", "no_duplicate_rows")


@dataclass
class _Tally:
    count: int = 0
    examples: list[Example] = field(default_factory=list)
    message: str = ""

    def room(self) -> int:
        return MAX_EXAMPLES - len(self.examples)


def _message(schema: Schema, column: str, check: str) -> str:
    rule = schema.columns.get(column)
    if rule is None:
        return {"strict": "column is not in the schema (strict: true)"}.get(check, check)
    return {
        "required": "column is missing",
        "dtype": f"values are not {rule.dtype}",
        "nullable": "missing values (the column is not nullable)",
        "min": f"values below min {rule.min}",
        "exclusive_min": f"values not above exclusive_min {rule.min}",
        "max": f"values above max {rule.max}",
        "exclusive_max": f"values not below exclusive_max {rule.max}",
        "allowed": "values not in allowed: " + ", ".join(map(str, (rule.allowed or ())[:8]))
                   + (", ..." if len(rule.allowed or ()) > 8 else ""),
        "regex": f"values do not fully match regex {rule.regex}",
        "unique": "values occur more than once",
    }.get(check, check)


@dataclass
class _Run:
    """The state of one validation pass over a dataset."""

    schema: Schema
    root: Path  # the dataset path; files inside a folder are named relative to it
    tallies: dict[tuple[str, str], _Tally] = field(default_factory=dict)
    finders: list[DuplicateFinder] = field(default_factory=list)
    pandera_schemas: dict[tuple[str, ...], tuple[pa.DataFrameSchema, dict[str, list[str]]]] = \
        field(default_factory=dict)
    files: set[Path] = field(default_factory=set)
    rows: int = 0

    def file_name(self, file: Path) -> str | None:
        return file.relative_to(self.root).as_posix() if self.root.is_dir() else None

    def tally(self, column: str, check: str, message: str | None = None) -> _Tally:
        key = (column, check)
        if key not in self.tallies:
            self.tallies[key] = _Tally(message=message or _message(self.schema, column, check))
        return self.tallies[key]

    def add_examples(self, tally: _Tally, chunk: Chunk, rows: Any, values: Any) -> None:
        name = self.file_name(chunk.file)
        for row, value in zip(list(rows)[:tally.room()], list(values)[:tally.room()],
                              strict=False):
            tally.examples.append(Example(None if row is None else int(row), json_value(value),
                                          name))

    def pandera_for(self, columns: tuple[str, ...]) -> tuple[pa.DataFrameSchema,
                                                             dict[str, list[str]]]:
        """The per-chunk pandera schema of these checkable columns (built once per set)."""
        import pandera.pandas as pa

        if columns not in self.pandera_schemas:
            names: dict[str, list[str]] = {}
            pa_columns = {}
            for name in columns:
                rule = self.schema.columns[name]
                checks = value_checks(rule)
                names[name] = [n for n, _ in checks]
                pa_columns[name] = pa.Column(None, checks=[c for _, c in checks],
                                             nullable=rule.nullable, name=name)
            self.pandera_schemas[columns] = (pa.DataFrameSchema(pa_columns), names)
        return self.pandera_schemas[columns]


def _columns(run: _Run, chunk: Chunk) -> tuple[pd.DataFrame, list[str], dict[str, np.ndarray]]:
    """Column presence and dtypes: the normalised frame, its checkable columns, bad-value masks."""
    frame = chunk.frame
    present = set(frame.columns)
    n = len(frame)
    run.files.add(chunk.file)
    for name, rule in run.schema.columns.items():
        if name not in present and rule.required:
            tally = run.tally(name, "required")
            tally.count += n
            if chunk.file.name not in tally.message and run.root.is_dir():
                tally.message = f"column is missing (e.g. in {run.file_name(chunk.file)})"
    if run.schema.strict:
        for name in frame.columns:
            if name not in run.schema.columns:
                run.tally(str(name), "strict").count += n
    checkable: list[str] = []
    bad_rows: dict[str, np.ndarray] = {}
    changed: dict[str, pd.Series] = {}
    for name, rule in run.schema.columns.items():
        if name not in present:
            continue
        source = chunk.source_types.get(name) if chunk.source_types is not None else None
        result = normalise(frame[name], rule, source)
        if result.values is None:
            tally = run.tally(name, "dtype", f"{result.problem}; the schema says {rule.dtype}")
            tally.count += n
            continue
        if result.bad is not None and result.bad.any():
            tally = run.tally(name, "dtype")
            tally.count += int(result.bad.sum())
            original = frame[name][result.bad]
            run.add_examples(tally, chunk, original.index[:MAX_EXAMPLES],
                             original.iloc[:MAX_EXAMPLES])
            bad_rows[name] = result.bad
        if result.values is not frame[name]:
            changed[name] = result.values
        checkable.append(name)
    if changed:
        frame = frame.copy(deep=False)
        for name, values in changed.items():
            frame[name] = values
    return frame, checkable, bad_rows


def _run_pandera(run: _Run, chunk: Chunk, frame: pd.DataFrame, checkable: list[str],
                 bad_rows: dict[str, np.ndarray]) -> None:
    import pandera.pandas as pa

    if not checkable or frame.empty:
        return
    schema, names = run.pandera_for(tuple(checkable))
    try:
        schema.validate(frame[checkable], lazy=True, inplace=True)
        return
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    for (column, check, number), group in cases.groupby(
            ["column", "check", "check_number"], dropna=False, sort=False):
        if check == "not_nullable":
            ours = "nullable"
            if column in bad_rows:  # a value that is not of the dtype was reported already
                bad_at = frame.index[bad_rows[column]]
                group = group[~group["index"].isin(bad_at)]
                if group.empty:
                    continue
        elif isinstance(number, int | float) and number == number:
            ours = names[str(column)][int(number)]
        else:
            ours = str(check)
        tally = run.tally(str(column), ours)
        tally.count += len(group)
        if tally.room() > 0:
            head = group.sort_values("index").head(tally.room())
            rows = [None if r != r else r for r in head["index"]]  # NaN: not row-specific
            run.add_examples(tally, chunk, rows, head["failure_case"])


def _finders(schema: Schema) -> list[DuplicateFinder]:
    finders = [DuplicateFinder("unique", name, [name], True)
               for name, rule in schema.columns.items() if rule.unique]
    finders += [DuplicateFinder("unique", DATASET, list(key), False)
                for key in schema.unique_keys]
    if schema.no_duplicate_rows:
        finders.append(DuplicateFinder("no_duplicate_rows", DATASET, [], False))
    return finders


def _examples_pass(run: _Run, path: Path, fmt: str, chunk_rows: int,
                   wanted: list[tuple[DuplicateFinder, np.ndarray, _Tally]]) -> None:
    """Read the data again, only the needed columns, to show rows of each duplicated value."""
    columns = sorted({c for finder, _, _ in wanted for c in finder.columns})
    for chunk in iter_parts(path, fmt, columns, chunk_rows):
        frame, _, _ = _columns(_Run(run.schema, run.root), chunk)
        for finder, repeated, tally in wanted:
            if tally.room() <= 0 or any(c not in frame.columns for c in finder.columns):
                continue
            hits = frame[finder.columns][finder.matching(frame, repeated)].head(tally.room())
            values = hits.iloc[:, 0] if len(finder.columns) == 1 else hits.to_dict("records")
            run.add_examples(tally, chunk, hits.index, values)
        if all(t.room() <= 0 for _, _, t in wanted):
            return


def _with_all_columns(finder: DuplicateFinder, frame: pd.DataFrame) -> DuplicateFinder:
    if not finder.columns:
        finder.columns = sorted(map(str, frame.columns))
    return finder


def validate_path(path: Path, fmt: str, schema: Schema, *, chunk_rows: int = CHUNK_ROWS
                  ) -> tuple[int, int, list[CheckFailure]]:
    """Validate the data at ``path``: (rows, files, failures). DataInvalid if unreadable."""
    run = _Run(schema, path)
    finders = _finders(schema)
    # Strict schemas and whole-row duplicates need every column; otherwise read only ours.
    columns = None if schema.strict or schema.no_duplicate_rows else list(schema.columns)
    chunks: Iterator[Chunk] = iter_parts(path, fmt, columns, chunk_rows)
    for chunk in chunks:
        frame, checkable, bad_rows = _columns(run, chunk)
        _run_pandera(run, chunk, frame, checkable, bad_rows)
        for finder in finders:
            if finder.check == "no_duplicate_rows":
                _with_all_columns(finder, frame)
            if all(c in checkable for c in finder.columns) or (
                    finder.check == "no_duplicate_rows" and set(finder.columns) <= set(
                        frame.columns)):
                finder.add(frame)
        run.rows += len(frame)
    wanted = []
    for finder in finders:
        count, repeated = finder.duplicates()
        if count:
            message = ("values occur more than once" if finder.column != DATASET else
                       "rows are exact copies of other rows" if finder.check != "unique" else
                       f"rows share their key ({', '.join(finder.columns)})")
            tally = run.tally(finder.column, finder.check, message)
            tally.count += count
            wanted.append((finder, repeated, tally))
    if wanted:
        _examples_pass(run, path, fmt, chunk_rows, wanted)
    if run.rows < schema.rows_min or (schema.rows_max is not None and run.rows > schema.rows_max):
        bound = (f"at least {schema.rows_min}" if run.rows < schema.rows_min
                 else f"at most {schema.rows_max}")
        run.tally(DATASET, "rows", f"{run.rows} rows; the schema wants {bound}")
    return run.rows, len(run.files), _ordered(schema, run.tallies)


def _ordered(schema: Schema, tallies: dict[tuple[str, str], _Tally]) -> list[CheckFailure]:
    order = {name: i for i, name in enumerate(schema.columns)}

    def key(item: tuple[tuple[str, str], _Tally]) -> tuple[int, int, str]:
        (column, check), _ = item
        position = order.get(column, len(order) + (1 if column == DATASET else 0))
        rank = CHECK_ORDER.index(check) if check in CHECK_ORDER else len(CHECK_ORDER)
        return position, rank, column

    return [CheckFailure(column, check, t.count, t.message, t.examples)
            for (column, check), t in sorted(tallies.items(), key=key)]
