"""Load YAML while remembering where every key and value came from.

pydantic and our own checks report problems by *path* (``stages.train.deps``);
this module turns a path back into ``file:line:column`` so every config error
points at the right spot. Duplicate keys, which PyYAML silently merges, are
reported as errors here. Anchors, aliases and merge keys (``<<: *defaults``)
work as in any YAML file; a merged value is located where it is written.

Every YAML file sluice reads from a project goes through :func:`parse_yaml`, so
its limits hold for all of them: aliases may add at most
:data:`MAX_ALIAS_VALUES` values to what the file spells out (an "alias bomb" of
nine anchors used nine times each would otherwise build hundreds of millions),
values nest at most :data:`MAX_DEPTH` levels, and only the tags of plain data
(strings, numbers, booleans, null, dates, lists, mappings) are accepted; a
``!!python/object`` or ``!custom`` tag is an error rather than silently dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.errors import ConfigError, Location

if TYPE_CHECKING:  # imported where used: a run that finds its config cached parses no YAML
    import yaml

PathKey = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STD = "tag:yaml.org,2002:"
# Far above any real config (the example project has a few hundred values), far
# below what hurts: a value costs a few hundred bytes once built and located.
MAX_ALIAS_VALUES = 100_000
MAX_DEPTH = 100  # also keeps the recursive builder far from Python's recursion limit
_SCALAR_TAGS = frozenset(_STD + t for t in (
    "str", "int", "float", "bool", "null", "timestamp", "merge", "value"))


@dataclass(frozen=True)
class _Scalar:
    """Enough about a scalar's source text to locate a character inside it."""

    style: str | None  # None (plain), "'", '"', "|" or ">"
    value: str
    lines: tuple[str, ...]  # the source lines the scalar spans
    line: int  # 1-based line of its first character
    column: int  # 1-based column of its first character
    single_line: bool


@dataclass
class YamlSource:
    """Parsed data plus a map from data paths to their positions in the file."""

    file: str
    data: Any
    value_at: dict[PathKey, Location] = field(default_factory=dict)
    key_at: dict[PathKey, Location] = field(default_factory=dict)
    scalars: dict[PathKey, _Scalar] = field(default_factory=dict)

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

    def locate_offset(self, path: PathKey, offset: int) -> Location:
        """The location of character ``offset`` of the string value at ``path``.

        Exact for plain and quoted one-line scalars without escapes and for
        ``|`` and ``>`` blocks; otherwise the start of the value.
        """
        start = self.locate(path)
        scalar = self.scalars.get(tuple(path))
        if scalar is None or not 0 <= offset <= len(scalar.value):
            return start
        if scalar.single_line and scalar.style in (None, "'", '"'):
            quote = 0 if scalar.style is None else 1
            text = scalar.lines[0][scalar.column - 1 + quote:]
            if text.startswith(scalar.value[:offset]):
                return Location(self.file, scalar.line, scalar.column + quote + offset)
        if scalar.style in ("|", ">"):
            # Block scalars: each content line is one run of the value, followed
            # by one newline (literal) or space (folded). Checked run by run, so
            # anything unusual (blank lines when folding) falls back to the start.
            content = scalar.lines[1:]
            indent = next((len(s) - len(s.lstrip(" ")) for s in content if s.strip()), 0)
            pos = 0
            for row, line in enumerate(content):
                piece = line[indent:]
                if scalar.value[pos:pos + len(piece)] != piece:
                    break
                if offset < pos + len(piece):
                    return Location(self.file, scalar.line + 1 + row, indent + 1 + offset - pos)
                pos += len(piece) + 1
        return start


def _loc(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed node tree into plain data, recording every location."""

    def __init__(self, file: str, lines: list[str], src: YamlSource) -> None:
        self.file = file
        self.lines = lines
        self.src = src
        self.explicit: dict[int, set[int]] = {}  # mapping → its own (not merged) keys

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        import yaml

        # _check_tree has refused loops, bombs and deep nesting: plain recursion is safe.
        self.src.value_at[path] = _loc(self.file, node)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        # Scalars: compose() already resolved their tags; the constructor turns
        # them into str, int, float, bool or None exactly as yaml.safe_load would.
        value = _constructor().construct_object(node, deep=True)
        _constructor().constructed_objects.pop(node, None)  # keep the shared loader empty
        if isinstance(value, str) and isinstance(node, yaml.ScalarNode):
            first, last = node.start_mark.line, node.end_mark.line
            self.src.scalars[path] = _Scalar(
                style=node.style or None, value=value,
                lines=tuple(self.lines[first:last + 1]), line=first + 1,
                column=node.start_mark.column + 1, single_line=first == last)
        return value

    def mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        import yaml

        explicit = self.explicit.setdefault(
            id(node), {id(k) for k, _ in node.value if k.tag != _MERGE_TAG})
        if any(k.tag == _MERGE_TAG for k, _ in node.value):
            _constructor().flatten_mapping(node)  # merged pairs first, then the explicit ones
        # A later pair overrides an earlier merged one, so only the last pair of
        # each key is built: nothing is built and then thrown away, and the
        # result keeps the order in which keys first appear.
        winner: dict[str, int] = {}
        written: dict[str, yaml.Node] = {}
        for index, (key_node, _) in enumerate(node.value):
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("a mapping key must be a plain name, not a list or mapping",
                                  location=_loc(self.file, key_node),
                                  hint="write keys as `name: value`")
            key = key_node.value
            if id(key_node) in explicit:
                if key in written:
                    first = written[key].start_mark.line + 1
                    inside = f" in `{'.'.join(map(str, path))}`" if path else ""
                    raise ConfigError(
                        f"duplicate key `{key}`{inside} (first defined at line {first})",
                        location=_loc(self.file, key_node),
                        hint="remove one of the two definitions or rename one")
                written[key] = key_node
            winner[key] = index
        result: dict[Any, Any] = {}
        for key, index in winner.items():
            key_node, value_node = node.value[index]
            self.src.key_at[(*path, key)] = _loc(self.file, key_node)
            result[key] = self.build(value_node, (*path, key))
        return result


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix(_STD) if tag.startswith(_STD) else tag


def _children(node: yaml.Node) -> list[yaml.Node]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_tag(file: str, node: yaml.Node) -> None:
    """Only plain data: an unknown tag is refused, never silently dropped."""
    import yaml

    allowed = (node.tag in _SCALAR_TAGS if isinstance(node, yaml.ScalarNode) else
               node.tag == _STD + ("map" if isinstance(node, yaml.MappingNode) else "seq"))
    if not allowed:
        raise ConfigError(f"{file}: unsupported YAML tag `{_tag_name(node.tag)}`",
                          location=_loc(file, node),
                          hint="remove the tag; sluice files hold plain strings, numbers, "
                               "booleans, lists and mappings (never Python objects)")


def _check_tree(file: str, root: yaml.Node) -> None:
    """Refuse unknown tags, deep nesting, and aliases that expand beyond the limits.

    Aliases make the composed tree a graph; this walks each distinct node once
    (iteratively, so nesting cannot exhaust the stack) and computes how many
    values every node stands for once its aliases and merges are expanded, so a
    bomb is refused before anything is built. Merges are counted in full, an
    upper bound of what merging them yields.
    """
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    on_path = {id(root)}
    _check_tag(file, root)
    stack: list[tuple[yaml.Node, list[yaml.Node]]] = [(root, _children(root))]
    position = [0]
    while stack:
        node, kids = stack[-1]
        if position[-1] < len(kids):
            kid = kids[position[-1]]
            position[-1] += 1
            if id(kid) in on_path:
                raise ConfigError("this anchored value contains an alias to itself, which "
                                  "would make it endless", location=_loc(file, kid),
                                  hint="an anchor (`&name`) can only be used (`*name`) "
                                       "outside the value it names")
            if len(stack) + height.get(id(kid), 1) > MAX_DEPTH:
                raise ConfigError(f"{file}: values are nested more than {MAX_DEPTH} levels "
                                  "deep here", location=_loc(file, kid),
                                  hint="flatten the structure; no sluice file needs "
                                       "this much nesting")
            if id(kid) not in size:
                _check_tag(file, kid)
                on_path.add(id(kid))
                stack.append((kid, _children(kid)))
                position.append(0)
            continue
        stack.pop()
        position.pop()
        on_path.discard(id(node))
        size[id(node)] = 1 + sum(size[id(k)] for k in kids)
        height[id(node)] = 1 + max((height[id(k)] for k in kids), default=0)
    limit = len(size) + MAX_ALIAS_VALUES
    if size[id(root)] <= limit:
        return
    node = root  # point at the innermost value that is too big on its own
    while (big := next((k for k in _children(node) if size[id(k)] > limit),
                       None)) is not None:
        node = big
    raise ConfigError(f"{file}: aliases (`*name`) expand this value to {size[id(node)]:,} "
                      f"values; sluice allows aliases to add at most {MAX_ALIAS_VALUES:,}",
                      location=_loc(file, node),
                      hint="use each anchor (`&name`) fewer times, or write the values out")


def _reader_error(exc: yaml.reader.ReaderError, text: str, file: str) -> ConfigError:
    """A character YAML does not allow (NUL, other control characters), located."""
    at = max(0, min(exc.position, len(text)))
    line_start = text.rfind("\n", 0, at) + 1
    code = exc.character if isinstance(exc.character, int) else ord(exc.character)
    what = "a NUL character" if code == 0 else "the control character" \
        if code < 0x20 or 0x7F <= code < 0xA0 else "the character"
    return ConfigError(f"{file} is not valid YAML: {what} U+{code:04X} is not allowed in YAML",
                       location=Location(file, text.count("\n", 0, at) + 1, at - line_start + 1),
                       hint="remove it; a file with such characters is often binary or "
                            "saved in another encoding than UTF-8")


@cache
def _constructor() -> yaml.SafeLoader:
    """One shared loader that turns scalar nodes into values (kept empty between uses)."""
    import yaml

    return yaml.SafeLoader("")


_COMPOSER: Any = None  # the composer's Loader class; tests set it to the pure-Python one


def _composer() -> Any:
    import yaml

    # libyaml's composer is ~10x faster and keeps the same marks; pure Python is the fallback.
    return _COMPOSER or getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# PyYAML's wording (pure Python, then libyaml) for the most common mistakes, and
# what it means to a person.
_PLAIN_WORDS = (
    ("expected <block end>, but found",
     "this line's indentation does not line up with the lines above it"),
    ("did not find expected key",
     "this line's indentation does not line up with the lines above it"),
    ("mapping values are not allowed",
     "unexpected `:`; put the value in quotes if it contains `: `"),
    ("could not find expected ':'", "expected `key: value` here"),
    ("expected a single document in the stream",
     "more than one YAML document (`---`); put everything in one"),
)
_ALIAS = re.compile(r"\*([^\s,\[\]{}]+)")


def _explain(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, yaml.Mark | None]:
    """A plain-words reading of a PyYAML error, and the mark it is best shown at."""
    problem = exc.problem or exc.context or "invalid YAML"
    context = exc.context or ""
    mark = exc.problem_mark or exc.context_mark
    at = text[mark.index:] if mark is not None and 0 <= mark.index < len(text) else ""
    if problem.startswith("found character") and at.startswith("\t"):
        return "a tab character; YAML indentation must use spaces", mark
    for raw, plain in _PLAIN_WORDS:
        if problem.startswith(raw) or context.startswith(raw):
            return plain, mark
    if "quoted scalar" in context and exc.context_mark is not None:
        return "this quoted string is never closed", exc.context_mark
    for what, opener, closer in (("sequence", "[", "]"), ("mapping", "{", "}")):
        if context == f"while parsing a flow {what}" and exc.context_mark is not None:
            start = exc.context_mark
            return (f"the `{opener}` opened at line {start.line + 1}, column "
                    f"{start.column + 1} is not closed with `{closer}`", mark)
    if problem.startswith("found undefined alias"):
        found = _ALIAS.match(at)
        name = found.group(1) if found else problem.rsplit(" ", 1)[-1].strip("'")
        return f"`*{name}` refers to no anchor; define `&{name}` before using it", mark
    if context.startswith("while ") and exc.context_mark is not None:
        return f"{problem} {context}", mark
    return problem, mark


def parse_yaml(text: str, file: str) -> YamlSource:
    """Parse ``text`` (the contents of ``file``) into a :class:`YamlSource`."""
    import yaml

    src = YamlSource(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=_composer())
        if node is None:
            src.value_at[()] = Location(file, 1, 1)
            return src
        _check_tree(file, node)
        src.data = _Builder(file, text.splitlines(), src).build(node, ())
    except yaml.MarkedYAMLError as exc:
        problem, mark = _explain(exc, text)
        location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise ConfigError(f"{file} is not valid YAML: {problem}", location=location,
                          hint="check the indentation and quoting around that spot") from None
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    except RecursionError:  # the pure-Python composer, before _check_tree sees the depth
        raise ConfigError(f"{file}: values are nested more than {MAX_DEPTH} levels deep",
                          location=Location(file), hint="flatten the structure; no sluice "
                                                        "file needs this much nesting") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file} is not valid YAML: {exc}", location=Location(file),
                          hint="fix the YAML syntax") from None
    finally:
        _constructor().constructed_objects.clear()
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


def parse_yaml_bytes(raw: bytes, name: str) -> YamlSource:
    """Parse file content that came from disk or git; non-UTF-8 bytes are a ConfigError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{name} is not UTF-8 text (byte {exc.start})",
                          location=Location(name), hint="save the file as UTF-8") from None
    return parse_yaml(text, name)
