"""YAML with locations: data as yaml.safe_load gives it, plus where everything is."""

from __future__ import annotations

import random
from typing import Any

import pytest
import yaml

from sluice.errors import ConfigError, Location
from sluice.util.yamlsource import parse_yaml

_CHARS = "abcXYZ019 _-.:#'\"{}[],&*!|>%@`\\\t\né€"


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-10**6, 10**6)
    if kind == 3:
        return rng.uniform(-1e6, 1e6)
    if kind in (4, 5):
        return "".join(rng.choice(_CHARS) for _ in range(rng.randrange(12)))
    if kind == 6:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {"".join(rng.choice(_CHARS) for _ in range(1 + rng.randrange(6))):
            _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


@pytest.mark.parametrize("flow", [False, True])
def test_data_matches_safe_load(flow: bool) -> None:
    rng = random.Random(20240601)
    for _ in range(150):
        value = {str(i): _random_value(rng) for i in range(rng.randrange(1, 5))}
        text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True)
        assert parse_yaml(text, "f.yaml").data == yaml.safe_load(text), text


def test_scalar_types_follow_yaml() -> None:
    src = parse_yaml("a: 1\nb: 1.5\nc: yes\nd: ~\ne: '1'\n", "f")
    assert src.data == {"a": 1, "b": 1.5, "c": True, "d": None, "e": "1"}


def test_keys_are_names_as_written() -> None:
    assert parse_yaml("1: a\ntrue: b\nnull: c\n", "f").data == \
        {"1": "a", "true": "b", "null": "c"}


def test_locations_of_keys_and_values() -> None:
    src = parse_yaml("top:\n  key: value\n  list:\n    - one\n    - two\n", "f.yaml")
    assert src.locate(("top", "key"), key=True) == Location("f.yaml", 2, 3)
    assert src.locate(("top", "key")) == Location("f.yaml", 2, 8)
    assert src.locate(("top", "list", 1)) == Location("f.yaml", 5, 7)
    # an unknown path falls back to the nearest enclosing item
    assert src.locate(("top", "list", 7)) == Location("f.yaml", 4, 5)
    assert src.locate(("nope",)) == Location("f.yaml", 1, 1)


@pytest.mark.parametrize(("text", "offset", "where"), [
    ("cmd: echo ${x}\n", 5, (1, 11)),
    ("cmd: 'echo ${x}'\n", 5, (1, 12)),
    ('cmd: "echo ${x}"\n', 5, (1, 12)),
    ('cmd: "a\\tb ${x}"\n', 4, (1, 6)),  # an escape before the offset: the value's start
    ('cmd: "${x} a\\tb"\n', 0, (1, 7)),  # ... but not when it comes after
    ("cmd: |\n  echo a\n  run ${x}\n", 11, (3, 7)),
    ("cmd: |-\n    echo a\n      run ${x}\n", 13, (3, 11)),
    ("cmd: >-\n  echo a\n  run ${x}\n", 11, (3, 7)),
    ("cmd: >\n  echo a\n\n  run ${x}\n", 11, (1, 6)),  # a blank line when folding: the start
    ("cmd: >-\n    a\n    b ${x}\nnext: 1\n", 4, (3, 7)),
    ("cmd: echo\n  more ${x}\n", 10, (1, 6)),  # a plain scalar over two lines
    ("cmd: echo ${x}\n", 99, (1, 6)),
])
def test_locate_offset(text: str, offset: int, where: tuple[int, int]) -> None:
    src = parse_yaml(text, "f")
    assert src.locate_offset(("cmd",), offset) == Location("f", *where)


def test_merge_keys_override_without_duplicate_errors() -> None:
    src = parse_yaml("""\
base: &b {x: 1, y: 2}
more: &m {y: 3, z: 4}
c:
  <<: [*b, *m]
  z: 5
""", "f")
    assert src.data["c"] == {"x": 1, "y": 2, "z": 5}
    assert src.locate(("c", "x")) == Location("f", 1, 14)  # where the merged value is written
    assert src.locate(("c", "z")) == Location("f", 5, 6)


def test_merge_of_a_non_mapping_is_an_error() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_yaml("a: &a [1]\nb:\n  <<: *a\n", "f")


def test_duplicate_keys_are_errors_at_any_depth() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a:\n  - b: 1\n    b: 2\n", "f")
    assert info.value.message == "duplicate key `b` in `a.0` (first defined at line 2)"
    assert info.value.location == Location("f", 3, 5)


def test_several_documents_are_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml("a: 1\n---\nb: 2\n", "f")
    assert info.value.message == ("f is not valid YAML: more than one YAML document (`---`); "
                                  "put everything in one")


def test_empty_document() -> None:
    src = parse_yaml("# only a comment\n", "f")
    assert src.data is None
    assert src.locate(()) == Location("f", 1, 1)


BROKEN = [
    "stages:\n  a:\n    cmd: echo\n   outs: {x: x.txt}\n",
    "stages:\n\ta: {cmd: x}\n",
    "stages:\n  a:\n    cmd: echo a: b\n",
    "stages: *base\n",
    'stages:\n  a:\n    cmd: "echo hi\n',
    "stages:\n  a:\n    deps: [a.txt, b.txt\n",
    "stages: {a: {cmd: x}\n",
    "a: 1\n---\nb: 2\n",
]


@pytest.mark.parametrize("text", BROKEN)
def test_same_messages_with_libyaml_and_pure_python(text: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.util import yamlsource
    def error(loader: Any) -> tuple[str, Location | None]:
        monkeypatch.setattr(yamlsource, "_COMPOSER", loader)
        with pytest.raises(ConfigError) as info:
            parse_yaml(text, "f")
        return info.value.message, info.value.location

    python = error(yaml.SafeLoader)
    assert "<" not in python[0], "PyYAML's token names mean nothing to a user"
    if hasattr(yaml, "CSafeLoader"):
        assert error(yaml.CSafeLoader) == python


def _alias_bomb(levels: int = 9, width: int = 9) -> str:
    """Nine anchors, each used nine times by the next: 9**9 values once expanded."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]"
              for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_before_anything_is_built() -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(_alias_bomb(), "f.yaml")
    # a5 is the first anchor that expands beyond the limit on its own: 1 + 9 * 66,430
    assert info.value.message == ("f.yaml: aliases (`*name`) expand this value to 597,871 "
                                  "values; sluice allows aliases to add at most 100,000")
    assert info.value.location == Location("f.yaml", 6, 5)


def test_a_merge_key_bomb_is_refused() -> None:
    text = "m0: &m0 {" + ", ".join(f"k{i}: {i}" for i in range(9)) + "}\n" + "".join(
        f"m{i}: &m{i}\n  <<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    with pytest.raises(ConfigError, match=r"aliases .* expand this value"):
        parse_yaml(text, "f.yaml")


def test_aliases_below_the_limit_and_large_plain_files_load() -> None:
    src = parse_yaml(_alias_bomb(levels=4), "f")  # 9**4 values: a real config's worth
    assert src.data["a3"][8][8][8] == ["lol"] * 9
    many = parse_yaml("a: [" + ", ".join(["1"] * 150_000) + "]\n", "f")  # written, not aliased
    assert len(many.data["a"]) == 150_000


def test_nesting_is_bounded_with_a_location() -> None:
    assert parse_yaml("a: " + "[" * 99 + "]" * 99 + "\n", "f").data["a"] is not None
    block = "".join("  " * i + f"k{i}:\n" for i in range(150)) + "  " * 150 + "v: 1\n"
    with pytest.raises(ConfigError) as info:
        parse_yaml(block, "f")
    assert "nested more than 100 levels" in info.value.message
    assert info.value.location == Location("f", 100, 199)
    through_alias = "a: &a " + "[" * 60 + "]" * 60 + "\nb: " + "[" * 50 + "*a" + "]" * 50 + "\n"
    with pytest.raises(ConfigError, match="nested more than 100 levels"):
        parse_yaml(through_alias, "f")


@pytest.mark.parametrize("text", ["a: &a [1, *a]\n", "a: &a\n  x: 1\n  <<: *a\n",
                                  "a: &a\n  <<: *a\n"])
def test_an_alias_into_its_own_value_is_an_error(text: str) -> None:
    with pytest.raises(ConfigError, match="contains an alias to itself") as info:
        parse_yaml(text, "f")
    assert info.value.location == Location("f", 1, 4)


@pytest.mark.parametrize(("text", "what", "where"), [
    ("a: 1\nb: x\0y\n", "a NUL character U+0000", (2, 5)),
    ('a: 1\nb: "x\0y"\n', "a NUL character U+0000", (2, 6)),
    ("a: 1\nb: x\x07y\n", "the control character U+0007", (2, 5)),
    ("a: 1\nb: \ufffe\n", "the character U+FFFE", (2, 4)),
])
def test_characters_yaml_rejects_are_located(text: str, what: str, where: tuple[int, int],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.util import yamlsource
    loaders = [yaml.SafeLoader, *([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])]
    for loader in loaders:
        monkeypatch.setattr(yamlsource, "_COMPOSER", loader)
        with pytest.raises(ConfigError) as info:
            parse_yaml(text, "f")
        assert info.value.message == f"f is not valid YAML: {what} is not allowed in YAML"
        assert info.value.location == Location("f", *where)


@pytest.mark.parametrize(("text", "tag", "where"), [
    ("a: 1\nb: !!python/object/apply:os.system ['touch pwned']\n",
     "!!python/object/apply:os.system", (2, 4)),
    ("a: !!python/object:collections.OrderedDict {x: 1}\n",
     "!!python/object:collections.OrderedDict", (1, 4)),
    ("a: !!python/name:os.system ''\n", "!!python/name:os.system", (1, 4)),
    ("a:\n  - !foo bar\n", "!foo", (2, 5)),
    ("a: !foo [1]\n", "!foo", (1, 4)),
    ("!foo {a: 1}\n", "!foo", (1, 1)),
    ("a: {!foo k: 1}\n", "!foo", (1, 5)),
    ("a: !!set {x, y}\n", "!!set", (1, 4)),
    ("a: !!binary aGVsbG8=\n", "!!binary", (1, 4)),
])
def test_unknown_tags_are_errors_not_ignored(text: str, tag: str,
                                             where: tuple[int, int]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "f")
    assert info.value.message == f"f: unsupported YAML tag `{tag}`"
    assert info.value.location == Location("f", *where)


def test_plain_data_tags_still_work() -> None:
    src = parse_yaml("a: !!str 5\nb: !!int '7'\nc: !!float 1\nd: !!bool yes\ne: !!null ''\n"
                     "f: !!map {x: 1}\ng: !!seq [1]\n", "f")
    assert src.data == {"a": "5", "b": 7, "c": 1.0, "d": True, "e": None, "f": {"x": 1},
                        "g": [1]}


def test_a_merged_value_that_is_overridden_is_never_built() -> None:
    # The override wins without the merged bomb being expanded (nor counted twice).
    src = parse_yaml("d: &d {x: [1, 2], y: 2}\nc:\n  <<: *d\n  x: 3\n", "f")
    assert src.data["c"] == {"x": 3, "y": 2}
    assert ("c", "x", 0) not in src.value_at
    assert list(src.data["c"]) == ["x", "y"]  # keys keep the order they first appear in


def test_deep_nesting_with_the_pure_python_composer(monkeypatch: pytest.MonkeyPatch) -> None:
    from sluice.util import yamlsource
    monkeypatch.setattr(yamlsource, "_COMPOSER", yaml.SafeLoader)
    with pytest.raises(ConfigError, match="nested more than 100 levels"):
        parse_yaml("a: " + "[" * 2000 + "]" * 2000 + "\n", "f")
