"""Load YAML while remembering where every key and value came from.

pydantic and our own checks report problems by *path* (``stages.train.deps``);
this module turns a path back into ``file:line:column`` so every config error
points at the right spot. Duplicate keys, which PyYAML silently merges, are
reported as errors here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice.errors import ConfigError, Location

PathKey = tuple[str | int, ...]


@dataclass
class YamlSource:
    """Parsed data plus a map from data paths to their positions in the file."""

    file: str
    data: Any
    value_at: dict[PathKey, Location] = field(default_factory=dict)
    key_at: dict[PathKey, Location] = field(default_factory=dict)

    def locate(self, path: PathKey, *, key: bool = False) -> Location:
        """The location of ``path``; falls back to the nearest enclosing item."""
        table = self.key_at if key else self.value_at
        probe = tuple(path)
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.value_at:
                return self.value_at[probe]
            probe = probe[:-1]
        return self.value_at.get((), Location(self.file, 1, 1))


def _loc(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(file: str, node: yaml.Node, path: PathKey, src: YamlSource) -> Any:
    src.value_at[path] = _loc(file, node)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("a mapping key must be a plain name, not a list or mapping",
                                  location=_loc(file, key_node),
                                  hint="write keys as `name: value`")
            key = key_node.value
            if key in result:
                first = src.key_at[(*path, key)]
                raise ConfigError(f"duplicate key `{key}` (first defined at line {first.line})",
                                  location=_loc(file, key_node),
                                  hint="remove one of the two definitions or rename one")
            src.key_at[(*path, key)] = _loc(file, key_node)
            result[key] = _build(file, value_node, (*path, key), src)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(file, item, (*path, i), src) for i, item in enumerate(node.value)]
    # Scalars: compose() already resolved their tags; the constructor turns
    # them into str, int, float, bool or None exactly as yaml.safe_load would.
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.SafeLoader("")


def parse_yaml(text: str, file: str) -> YamlSource:
    """Parse ``text`` (the contents of ``file``) into a :class:`YamlSource`."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{file} is not valid YAML: {problem}", location=location,
                          hint="check the indentation and quoting around that spot") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}", location=Location(file),
                          hint="fix the YAML syntax") from None
    src = YamlSource(file=file, data=None)
    if node is None:
        src.data = None
        src.value_at[()] = Location(file, 1, 1)
        return src
    src.data = _build(file, node, (), src)
    return src


def load_yaml(path: Path, display: str | None = None) -> YamlSource:
    """Read and parse a YAML file; a missing or unreadable file is a ConfigError."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name} not found", hint="create it, or run `sluice init`") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name} is not UTF-8 text (byte {exc.start})",
                          location=Location(name), hint="save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {name}: {exc.strerror}", location=Location(name),
                          hint="check that the file exists and is readable") from None
    return parse_yaml(text, name)
