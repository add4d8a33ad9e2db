"""Schema files: errors located at file:line:column, with suggestions."""

from __future__ import annotations

import pytest

from sluice.errors import ConfigError, ConfigErrors
from tests.unit.data.validation._helpers import schema


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        schema(text)
    errors = info.value.errors if isinstance(info.value, ConfigErrors) else [info.value]
    return [e.render() for e in errors]


def test_full_schema_parses() -> None:
    parsed = schema("""\
        version: 1
        strict: false
        columns:
          age: {dtype: int64, nullable: false, min: 0, max: 120}
          plan: string
          score: {dtype: float32, exclusive_min: 0, required: false}
        checks: {rows: {min: 10, max: 20}, unique: [[age], [age, plan]], no_duplicate_rows: true}
        """)
    assert not parsed.strict and parsed.rows_min == 10 and parsed.rows_max == 20
    assert parsed.columns["plan"].dtype == "string"
    assert parsed.columns["score"].exclusive_min and not parsed.columns["score"].required
    assert parsed.unique_keys == (("age",), ("age", "plan"))


def test_unknown_check_dtype_and_dataset_check_suggest_names() -> None:
    errors = _errors("""\
        columns:
          age: {dtype: int64, minn: 0}
          plan: {dtype: strng}
        checks:
          uniqe: [age]
        """)
    assert errors[0].startswith("schema.yaml: unknown column check `minn`; did you mean `min`?"
                                " (schema.yaml:2:23)")
    assert "unknown dtype `strng`; did you mean `string`? (schema.yaml:3:17)" in errors[1]
    assert "unknown dataset check `uniqe`; did you mean `unique`? (schema.yaml:5:3)" in errors[2]


def test_bad_values_are_located() -> None:
    errors = _errors("""\
        columns:
          age: {dtype: int64, min: ten, max: 5}
          email: {dtype: string, regex: '([a-z]'}
          flag: {dtype: bool, nullable: maybe, min: 0}
        checks: {unique: [agee]}
        """)
    text = "\n".join(errors)
    assert "`min` must be a number, not 'ten' (schema.yaml:2:28)" in text
    assert "invalid regex" in text and "(schema.yaml:3:33)" in text
    assert "`nullable` must be true or false" in text
    assert "`min` does not apply to a bool column" in text
    assert "unique key column `agee` is not in `columns`; did you mean `age`?" in text


def test_yaml_syntax_and_shape_errors() -> None:
    assert "not valid YAML" in _errors("columns:\n  age: {dtype: int64\n")[0]
    assert "declares no `columns`" in _errors("version: 1\n")[0]
    assert "unsupported schema version 2" in _errors("version: 2\ncolumns: {a: int64}\n")[0]
    assert "has no `dtype`" in _errors("columns:\n  a: {min: 1}\n")[0]
