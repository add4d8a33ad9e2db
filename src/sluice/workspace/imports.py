"""Find the local Python files a stage command runs, by reading imports (never executing).

For ``python path/script.py …`` and ``python -m pkg.mod …`` in a stage's
command, the entry file's ``import`` statements are parsed with :mod:`ast` and
followed transitively through modules that live in the repository (searched in
the repo root, ``src/`` and the script's folder). Imports inside functions and
``if`` blocks count; dynamic imports (``importlib.import_module(name)``,
``__import__``) cannot be seen and must be listed under ``deps``.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_PYTHON = re.compile(r"^(?:.*/)?python(?:\d+(?:\.\d+)?)?$")
_SHELL_OPS = {"&&", "||", ";", "|", "&", "(", ")"}
_OPTS_WITH_ARG = {"-X", "-W", "-Q"}
SEARCH_ROOTS = ("", "src")


@dataclass(frozen=True)
class Entry:
    """What one python invocation runs: a script path or a module name."""

    script: str | None = None
    module: str | None = None


# A shell word (quoted parts included) or a control operator. shlex is exact but
# ten times slower, and only the python words and what follows them matter here.
_WORD = re.compile(r"""(?:'[^']*'|"(?:\\.|[^"\\])*"|\\.|[^\s'"\\;&|()])+|&&|\|\||[;&|()]""")
_QUOTED = re.compile(r"""'([^']*)'|"((?:\\.|[^"\\])*)"|\\(.)""")


def _words(cmd: str) -> list[str]:
    return [_QUOTED.sub(lambda m: next(g for g in m.groups() if g is not None), word)
            for word in _WORD.findall(cmd)]


def entries(cmd: str) -> list[Entry]:
    """The python entry points in a shell command."""
    found: list[Entry] = []
    words = _words(cmd)
    i = 0
    while i < len(words):
        if not _PYTHON.match(words[i]):
            i += 1
            continue
        i += 1
        while i < len(words) and words[i] not in _SHELL_OPS:
            word = words[i]
            if word == "-m" and i + 1 < len(words):
                found.append(Entry(module=words[i + 1]))
                break
            if word == "-c":
                break
            if word in _OPTS_WITH_ARG:
                i += 2
                continue
            if word.startswith("-"):
                i += 1
                continue
            found.append(Entry(script=posixpath.normpath(word)))
            break
        i += 1
    return found


# Where statements nest (function and class bodies, if/for/while/with/try/match
# blocks). An import is a statement, so expressions — most of a tree — are skipped:
# several times quicker than ast.walk on every no-op run.
_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")


def _statements(body: list[ast.stmt]) -> Iterator[ast.AST]:
    """Every statement in ``body``, nested ones included."""
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        for field in _BLOCKS:
            nested = getattr(node, field, None)
            if nested:
                stack.extend(reversed(nested))


def _imported_names(source: bytes, module: str, is_package: bool) -> Iterator[str]:
    """Absolute dotted names a module imports (relative imports resolved)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    package = module if is_package else module.rpartition(".")[0]
    for node in _statements(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                parent = parts[:len(parts) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            if base:
                yield base
            for alias in node.names:
                if alias.name != "*":
                    yield f"{base}.{alias.name}" if base else alias.name


class ImportFinder:
    """Resolves imports against a file tree given by ``exists`` and ``read``."""

    def __init__(self, exists: Callable[[str], bool], read: Callable[[str], bytes | None]) -> None:
        self.exists = exists
        self.read = read
        # Per finder (one file tree), so one parse serves every stage importing a module.
        self._names: dict[tuple[str, str], list[str]] = {}
        self._located: dict[tuple[str, tuple[str, ...]], tuple[str, str] | None] = {}

    def _module_file(self, name: str, roots: tuple[str, ...]) -> tuple[str, str] | None:
        """(file, root) of a local module or package, or None for third-party ones."""
        key = (name, roots)
        if key not in self._located:
            self._located[key] = self._find_module_file(name, roots)
        return self._located[key]

    def _find_module_file(self, name: str, roots: tuple[str, ...]) -> tuple[str, str] | None:
        rel = name.replace(".", "/")
        for root in roots:
            for candidate in (f"{rel}.py", f"{rel}/__init__.py"):
                path = posixpath.join(root, candidate) if root else candidate
                if self.exists(path):
                    return path, root
        return None

    def discover(self, cmd: str, scripts: tuple[str, ...] | list[str] = ()) -> list[str]:
        """Repo-relative paths of every local file the command's python entries import,
        and ``scripts`` (files run another way, e.g. by `mlflow run`) with their imports."""
        found: set[str] = set()
        queue: list[tuple[str, str, str]] = []  # (file, module name, root)
        for entry in [*entries(cmd), *(Entry(script=s) for s in scripts)]:
            if entry.script is not None:
                if self.exists(entry.script):
                    folder = posixpath.dirname(entry.script)
                    found.add(entry.script)
                    queue.append((entry.script, "__main__", folder))
            elif entry.module is not None:
                self._add_module(entry.module, SEARCH_ROOTS, found, queue)
        while queue:
            path, module, root = queue.pop()
            roots = tuple(dict.fromkeys((root, *SEARCH_ROOTS)))
            for name in self._imports_of(path, module):
                self._add_module(name, roots, found, queue)
        return sorted(found)

    def _imports_of(self, path: str, module: str) -> list[str]:
        key = (path, module)
        if key not in self._names:
            content = self.read(path)
            self._names[key] = [] if content is None else list(
                _imported_names(content, module, path.endswith("__init__.py")))
        return self._names[key]

    def _add_module(self, name: str, roots: tuple[str, ...], found: set[str],
                    queue: list[tuple[str, str, str]]) -> None:
        parts = name.split(".")
        # `import a.b.c` runs a/__init__.py and a/b/__init__.py too.
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            located = self._module_file(prefix, roots)
            if located is None:
                return
            path, root = located
            if path not in found:
                found.add(path)
                queue.append((path, prefix, root))
