"""sluice.workspace.imports: the imports a module makes, wherever the statement sits."""

from __future__ import annotations

import ast

from sluice.workspace.imports import _imported_names

SOURCE = b'''\
import a
from . import sibling
from .pkg import thing
import b.c as bc

def f():
    import in_function
    def g():
        from in_nested import x
    return lambda: __import__("dynamic")

class K:
    import in_class
    async def m(self):
        async with ctx():
            import in_async_with

if flag:
    import in_if
elif other:
    import in_elif
else:
    import in_else

for i in range(3):
    import in_for
else:
    import in_for_else

while False:
    import in_while

with open("x") as h:
    import in_with

try:
    import in_try
except ImportError:
    import in_except
else:
    import in_try_else
finally:
    import in_finally

match value:
    case 1:
        import in_case
'''


def test_imports_in_every_kind_of_block_are_found() -> None:
    names = set(_imported_names(SOURCE, "pkg.mod", False))
    expected = {"a", "pkg", "pkg.sibling", "pkg.pkg", "pkg.pkg.thing", "b.c", "in_function",
                "in_nested", "in_nested.x", "in_class", "in_async_with", "in_if", "in_elif",
                "in_else", "in_for", "in_for_else", "in_while", "in_with", "in_try",
                "in_except", "in_try_else", "in_finally", "in_case"}
    assert names == expected
    assert "dynamic" not in names  # a dynamic import cannot be seen (listed under deps)
    # Each of the file's import statements (as ast.walk finds them) gave its names.
    statements = [n for n in ast.walk(ast.parse(SOURCE))
                  if isinstance(n, ast.Import | ast.ImportFrom)]
    assert len(statements) == 20


def test_a_file_that_does_not_parse_imports_nothing() -> None:
    assert list(_imported_names(b"def (:\n", "m", False)) == []
