"""Validation results as terminal text, Markdown (reports, PR comments) and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sluice.data.validation.result import CheckFailure, DatasetValidation


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _examples(failure: CheckFailure) -> str:
    parts = []
    for example in failure.examples:
        where = f"row {example.row}" if example.row is not None else "column"
        if example.file:
            where += f" in {example.file}"
        parts.append(f"{_value(example.value)} ({where})")
    return ", ".join(parts)


def _summary(result: DatasetValidation) -> str:
    cached = ", cached" if result.cached else ""
    files = f" in {result.files} files" if result.files > 1 else ""
    if result.ok:
        return (f"{result.dataset}: OK ({result.rows:,} rows{files}, schema {result.schema}"
                f"{cached})")
    return (f"{result.dataset}: FAILED, {len(result.failures)} check(s) "
            f"({result.rows:,} rows{files}, schema {result.schema}{cached})")


def render_text(results: Sequence[DatasetValidation]) -> str:
    """Plain text for a terminal: one block per dataset, one line per failing check."""
    if not results:
        return "no dataset has a schema (add `schema:` to a dataset in sluice.yaml)"
    lines = []
    for result in results:
        lines.append(_summary(result))
        for failure in result.failures:
            count = (f"{failure.failing_rows:,} row{'' if failure.failing_rows == 1 else 's'}: "
                     if failure.failing_rows else "")
            lines.append(f"  {failure.column} [{failure.check}] {count}{failure.message}")
            if failure.examples:
                lines.append(f"      e.g. {_examples(failure)}")
    failed = sum(1 for r in results if not r.ok)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(results: Sequence[DatasetValidation]) -> str:
    """Markdown: a summary table of datasets, then a table of failures per failing dataset."""
    lines = ["### Data validation", ""]
    if not results:
        return "\n".join([*lines, "No dataset has a schema."]) + "\n"
    lines += ["| dataset | result | rows | schema |", "| --- | --- | --- | --- |"]
    for result in results:
        verdict = "✅ pass" if result.ok else f"❌ {len(result.failures)} failing check(s)"
        lines.append(f"| `{result.dataset}` | {verdict} | {result.rows:,} | "
                     f"`{_cell(result.schema)}` |")
    for result in results:
        if result.ok:
            continue
        lines += ["", f"#### `{result.dataset}`", "",
                  "| column | check | failing rows | problem | examples |",
                  "| --- | --- | --- | --- | --- |"]
        for failure in result.failures:
            lines.append(f"| `{_cell(failure.column)}` | {failure.check} | "
                         f"{failure.failing_rows:,} | {_cell(failure.message)} | "
                         f"{_cell(_examples(failure))} |")
    return "\n".join(lines) + "\n"


def render_json(results: Sequence[DatasetValidation]) -> dict[str, Any]:
    """What ``sluice data validate --json`` prints."""
    return {"ok": all(r.ok for r in results), "datasets": [r.to_json() for r in results]}
