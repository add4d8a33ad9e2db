"""The installed sluice's distribution name and version.

The import name and the command are ``sluice``, but the distribution on the
package index is ``sluice-ml``: ``sluice`` there is an unrelated project, so
anything that installs sluice by name (a generated CI file, a hint in an error
message) must ask for ``sluice-ml``.
"""

from __future__ import annotations

DISTRIBUTION = "sluice-ml"


def installed_version() -> str | None:
    """The version of the installed ``sluice-ml``; None for an uninstalled source tree."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return None


def install_hint(extra: str | None = None) -> str:
    """The pip command that installs sluice (with ``extra``) under its real name."""
    return f"pip install '{DISTRIBUTION}[{extra}]'" if extra else f"pip install {DISTRIBUTION}"
