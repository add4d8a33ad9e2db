"""The one glob matcher: ``deps`` globs for fingerprints, ``affected`` and the stage graph.

Semantics are those of git's ``:(glob)`` pathspec magic (wildmatch with
``WM_PATHNAME``), so what ``git ls-files ':(glob)PATTERN'`` lists is what
sluice matches:

- ``/`` always separates folders; ``*`` and ``?`` never match it;
- ``*`` and ``?`` *do* match a leading dot (``data/*`` matches ``data/.hidden``);
- ``**`` as a whole component crosses folders: ``**/x`` (``x`` in any folder,
  the top one included), ``a/**`` (everything below ``a``), ``a/**/b`` (zero or
  more folders between); any other ``**`` is a plain ``*``;
- ``[abc]``, ranges ``[a-z]``, POSIX classes ``[[:digit:]]``, negation with
  ``[!...]`` or ``[^...]``, ``]`` first in a class is literal; a ``[`` with no
  closing ``]`` in its component is a literal ``[``;
- ``\\`` makes the next character literal; matching is case-sensitive.

A pattern is run as a small automaton over path components, so the same code
also answers the prefix questions: whether anything *below* a folder can match
(to prune a tree walk), and whether a pattern touches a path or a folder above it.
Stdlib only, so importing it costs nothing noticeable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_POSIX_CLASSES = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "blank": " \\t", "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9", "graph": "!-~", "lower": "a-z", "print": " -~",
    "punct": "!-/:-@\\[-`{-~", "space": " \\t\\n\\r\\f\\v", "upper": "A-Z",
    "xdigit": "0-9a-fA-F",
}
_GLOBSTAR = None  # a `**` component in Glob.parts


def _bracket(comp: str, start: int) -> tuple[str, int] | None:
    """The regex for the class opening at ``comp[start] == '['`` and the index after it."""
    i = start + 1
    negate = i < len(comp) and comp[i] in "!^"
    if negate:
        i += 1
    items: list[str] = []
    first = True
    while i < len(comp):
        c = comp[i]
        if c == "]" and not first:
            body = "".join(items)
            if negate:
                return f"[^/{body}]", i + 1
            return (f"[{body}]" if body else "(?!)"), i + 1
        first = False
        if c == "[" and comp.startswith("[:", i):
            end = comp.find(":]", i + 2)
            if end != -1:
                items.append(_POSIX_CLASSES.get(comp[i + 2:end], ""))  # unknown: adds nothing
                i = end + 2
                continue
        if c == "\\" and i + 1 < len(comp):
            i += 1
            c = comp[i]
        lo = c
        i += 1
        if i + 1 < len(comp) and comp[i] == "-" and comp[i + 1] != "]":
            hi = comp[i + 1]
            i += 2
            if hi == "\\" and i < len(comp):
                hi = comp[i]
                i += 1
            if lo <= hi:  # a reversed range matches nothing, as in git
                items.append(f"{re.escape(lo)}-{re.escape(hi)}")
            continue
        items.append(re.escape(lo))
    return None  # no closing `]`


def _component(comp: str) -> re.Pattern[str]:
    """One path component's pattern as a regex over one name (no ``/`` inside)."""
    out: list[str] = []
    i = 0
    while i < len(comp):
        c = comp[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(comp):
            i += 1
            out.append(re.escape(comp[i]))
        elif c == "[":
            cls = _bracket(comp, i)
            if cls is not None:
                out.append(cls[0])
                i = cls[1]
                continue
            out.append(re.escape(c))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


class Glob:
    """A compiled pattern. States are indexes into ``parts``; ``len(parts)`` means matched."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.parts: tuple[re.Pattern[str] | None, ...] = tuple(
            _GLOBSTAR if comp == "**" else _component(comp) for comp in pattern.split("/"))
        self.end = len(self.parts)
        self.start = self._closure({0})

    def _closure(self, states: Iterable[int]) -> frozenset[int]:
        # A `**` that is not last may match zero folders; a last one needs at least one name.
        found = set(states)
        todo = list(found)
        while todo:
            s = todo.pop()
            if s < self.end - 1 and self.parts[s] is _GLOBSTAR and s + 1 not in found:
                found.add(s + 1)
                todo.append(s + 1)
        return frozenset(found)

    def step(self, states: frozenset[int], name: str) -> frozenset[int]:
        """The states after reading one path component ``name``."""
        new: set[int] = set()
        for s in states:
            if s >= self.end:
                continue
            part = self.parts[s]
            if part is _GLOBSTAR:
                new.add(s)
                if s == self.end - 1:
                    new.add(self.end)
            elif part.fullmatch(name):
                new.add(s + 1)
        return self._closure(new) if new else frozenset()

    def states(self, path: str) -> frozenset[int]:
        states = self.start
        for name in path.split("/"):
            states = self.step(states, name)
            if not states:
                break
        return states

    def match(self, path: str) -> bool:
        """Whether the pattern matches exactly ``path`` (a POSIX path relative to the root)."""
        return self.end in self.states(path)

    def below(self, folder: str, states: frozenset[int] | None = None) -> bool:
        """Whether something inside ``folder`` may match (``states``: ``folder``'s, if known)."""
        states = self.states(folder) if states is None else states
        return any(s < self.end for s in states)

    def touches(self, path: str) -> bool:
        """Whether the pattern matches ``path``, a folder above it, or may match below it."""
        states = self.start
        for name in path.split("/"):
            states = self.step(states, name)
            if self.end in states:
                return True  # `path` itself, or a folder above it
            if not states:
                return False
        return self.below(path, states)


@lru_cache(maxsize=512)
def compile_glob(pattern: str) -> Glob:
    return Glob(pattern)


def glob_match(pattern: str, path: str) -> bool:
    """Whether ``pattern`` matches ``path`` exactly, with git ``:(glob)`` semantics."""
    return compile_glob(pattern).match(path)
