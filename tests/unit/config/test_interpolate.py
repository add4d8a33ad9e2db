"""``${...}`` references: finding them, rejecting malformed ones, and shell-safe rendering."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sluice.config.interpolate import (
    NAMESPACES,
    InterpolationError,
    Reference,
    format_value,
    references,
    render,
)


def _values(table: dict[str, Any]) -> Any:
    return lambda ref: table[ref.name]


def test_references_with_offsets() -> None:
    template = "run ${outs.model} --lr ${params.train.lr} ${ tier.seed }"
    assert list(references(template)) == [
        Reference("outs.model", 4), Reference("params.train.lr", 23), Reference("tier.seed", 42)]
    assert Reference("stages.a.outs.b", 0).parts == ["stages", "a", "outs", "b"]


def test_namespaces() -> None:
    assert NAMESPACES == ("outs", "stages", "datasets", "params", "tier")


@pytest.mark.parametrize("template", [
    "echo $${HOME}", "echo $$", "echo $HOME", "awk '{print $1}'", "echo {}", "echo $${",
    "echo $${unclosed and more", "cost: 5$", "",
])
def test_no_references(template: str) -> None:
    assert list(references(template)) == []


@pytest.mark.parametrize(("template", "message", "offset"), [
    ("echo ${}", "`${}` is not a valid reference", 5),
    ("echo ${outs x}", "`${outs x}` is not a valid reference", 5),
    ("echo ${outs..x}", "`${outs..x}` is not a valid reference", 5),
    ("echo ${.outs}", "`${.outs}` is not a valid reference", 5),
    ("echo ${outs.}", "`${outs.}` is not a valid reference", 5),
    ("echo ${1outs}", "`${1outs}` is not a valid reference", 5),
    ("echo ${outs/x}", "`${outs/x}` is not a valid reference", 5),
    ("echo ${outs.x", "unclosed `${`", 5),
    ("echo ${tier.seed} ${outs.x", "unclosed `${`", 18),
    ("echo ${a${tier.seed}}", "unclosed `${`", 5),
    ("echo $${ok} ${", "unclosed `${`", 12),
])
def test_malformed_references(template: str, message: str, offset: int) -> None:
    with pytest.raises(InterpolationError) as info:
        list(references(template))
    assert str(info.value) == message
    assert info.value.offset == offset
    assert "$${" in info.value.hint


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (None, ""), (3, "3"), (0.1, "0.1"), (1e-5, "1e-05"),
    (2.0, "2.0"), ("x", "x"), ([1, "a", True], '[1,"a",true]'),
    ({"b": 1, "a": [2.5]}, '{"a":[2.5],"b":1}'), ({}, "{}"),
])
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


@pytest.mark.parametrize(("value", "rendered"), [
    ("model.pkl", "model.pkl"),
    ("my model.pkl", "'my model.pkl'"),
    ("it's", "'it'\"'\"'s'"),
    ("$HOME", "'$HOME'"),
    ("a;rm -rf /", "'a;rm -rf /'"),
    ("`id`", "'`id`'"),
    ("", "''"),
    (None, "''"),
    (True, "true"),
    (0.5, "0.5"),
    ({"k": "v w"}, "'{\"k\":\"v w\"}'"),
])
def test_render_quotes_values(value: Any, rendered: str) -> None:
    assert render("x ${params.p}", _values({"params.p": value})) == f"x {rendered}"


@pytest.mark.parametrize("value", ["plain", "two words", "it's", 'say "hi"', "$x $(id) `id`",
                                   "back\\slash", "new\nline", "*.csv", "~"])
def test_rendered_value_is_one_shell_word(value: str) -> None:
    command = render("${params.p}", _values({"params.p": value}))
    assert shlex.split(command) == [value]


def test_rendered_value_reaches_the_shell_intact(tmp_path: Path) -> None:
    value = "a b 'c' \"d\" $HOME `id` ; |"
    command = render("printf %s ${outs.x} > out.txt", _values({"outs.x": value}))
    subprocess.run(command, shell=True, cwd=tmp_path, check=True)
    assert (tmp_path / "out.txt").read_text() == value


def test_render_without_quoting() -> None:
    assert render("--out=${outs.x}", _values({"outs.x": "a b"}), quote=False) == "--out=a b"


def test_escapes_render_as_literal_references() -> None:
    resolve = _values({"outs.x": "o"})
    assert render("echo $${HOME} ${outs.x} $$ $HOME", resolve) == "echo ${HOME} o $$ $HOME"
    assert render("$${outs.x}", resolve) == "${outs.x}"


def test_render_passes_each_reference_once() -> None:
    seen: list[Reference] = []

    def resolve(ref: Reference) -> str:
        seen.append(ref)
        return "v"

    assert render("${ outs.a }/${outs.b}", resolve) == "v/v"
    assert [r.name for r in seen] == ["outs.a", "outs.b"]
