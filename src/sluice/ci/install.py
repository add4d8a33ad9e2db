"""How CI files install sluice: pinned ``sluice-ml`` from an index, or a vendored checkout.

``sluice`` on the public package index is an unrelated project, so a CI file that
runs ``pip install sluice`` installs someone else's code (dependency confusion),
and an unpinned ``sluice-ml`` installs whatever the index serves that day.
:func:`pin_install` rewrites ``ci.install`` for the generated files (every sluice
requirement becomes ``sluice-ml==<the version that generated the file>``, unless
it already pins one); :func:`unsafe_installs` finds the lines of a committed CI
file that still install sluice by the wrong name or unpinned. ``pip install -e .``
and other paths (a repository that vendors sluice) are not index installs and pass.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from sluice.errors import UsageError
from sluice.util.version import DISTRIBUTION, installed_version

_PIP_INSTALL = re.compile(r"\bpip3?(?:\.exe)?\s+install\b|\bpip\s+-\S+\s+install\b")
# pip options that take a value: their value is a file, URL or folder, never a requirement.
_WITH_VALUE = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i",
               "--index-url", "--extra-index-url", "-f", "--find-links", "-t", "--target",
               "--prefix", "--root", "--src", "--python-version", "--platform", "--abi",
               "--implementation", "--upgrade-strategy", "--progress-bar", "--log",
               "--cache-dir", "--trusted-host", "--proxy", "--timeout", "--retries",
               "--python", "--report", "--config-settings", "-C", "--global-option",
               "--no-binary", "--only-binary"}
_SEPARATORS = {"&&", "||", ";", "|", "&"}
_REQUIREMENT = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?P<extras>\[[^\]]*\])?"
                          r"(?P<spec>.*)$")
_NAMES = {"sluice", DISTRIBUTION}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    """One sluice requirement in a ``pip install`` command."""

    text: str  # as written (quotes removed)
    name: str  # normalised: ``sluice`` or ``sluice-ml``
    extras: str  # ``[s3]`` or ""
    pin: str | None  # the version of an ``==`` pin

    def problem(self) -> str | None:
        """Why installing this is unsafe, or None."""
        if self.name != DISTRIBUTION:
            return (f"`{self.text}` installs `sluice` from the package index, an unrelated "
                    f"project: sluice is published as `{DISTRIBUTION}`")
        if self.pin is None:
            return (f"`{self.text}` installs whatever version of `{DISTRIBUTION}` the index "
                    "serves that day: pin it")
        return None


def sluice_requirements(command: str) -> list[Requirement]:
    """The requirements naming sluice in the ``pip install`` commands of ``command``."""
    found: list[Requirement] = []
    for match in _PIP_INSTALL.finditer(command):
        rest = command[match.end():].split("\n", 1)[0]
        try:
            words = shlex.split(rest, comments=True)
        except ValueError:  # unbalanced quotes: plain words are good enough here
            words = rest.split()
        skip = False
        for word in words:
            if skip:
                skip = False
                continue
            if word in _SEPARATORS or word.endswith(";"):
                break
            if word.startswith("-"):
                skip = word in _WITH_VALUE  # `--opt=value` carries its value already
                continue
            parsed = _REQUIREMENT.match(word)
            if parsed is None or _normalise(parsed["name"]) not in _NAMES:
                continue
            spec = parsed["spec"].strip().strip("'\"")
            pin = re.fullmatch(r"===?\s*([A-Za-z0-9.+!_-]+)", spec.split(";")[0].strip())
            found.append(Requirement(word, _normalise(parsed["name"]), parsed["extras"] or "",
                                     pin[1] if pin else None))
    return found


def generating_version() -> str:
    """The version of the running sluice, which generated files pin."""
    version = installed_version()
    if version is None:
        raise UsageError(
            f"cannot pin `{DISTRIBUTION}` in the CI file: this sluice runs from a source tree "
            f"that is not installed, so its version is unknown",
            hint=f"install it (`pip install -e .` in the sluice checkout, or `pip install "
                 f"{DISTRIBUTION}`), or install sluice in `ci.install` without naming it "
                 "(e.g. `pip install -e .` in a repository that vendors it)")
    return version


def pin_install(command: str) -> tuple[str, str | None]:
    """``command`` with every sluice requirement pinned: (command, the pinned version).

    An explicit ``sluice-ml==X`` keeps its X; ``sluice`` and an unpinned ``sluice-ml``
    become ``sluice-ml==<generating version>``. The version is None when ``command``
    installs sluice from no index (``pip install -e .``).
    """
    requirements = sluice_requirements(command)
    if not requirements:
        return command, None
    version = next((r.pin for r in requirements if r.problem() is None), None) \
        or generating_version()
    for requirement in requirements:
        if requirement.problem() is None:
            continue
        pinned = f"{DISTRIBUTION}{requirement.extras}=={version}"
        if any(c in pinned for c in "[]"):
            pinned = shlex.quote(pinned)
        command = re.sub(rf"(?<![\w.\[=-])(['\"]?){re.escape(requirement.text)}\1(?![\w.=-])",
                         pinned.replace("\\", "\\\\"), command, count=1)
    return command, version


@dataclass(frozen=True)
class UnsafeInstall:
    """A line of a CI file that installs sluice from an index unsafely."""

    path: str
    line: int
    problem: str

    def render(self, version: str | None) -> str:
        fix = f"`{DISTRIBUTION}=={version}`" if version else f"`{DISTRIBUTION}==<version>`"
        return (f"{self.path}:{self.line}: {self.problem}; install {fix} instead (or "
                "`pip install -e .` where the repository vendors sluice), in `ci.install` "
                "of sluice.yaml for a generated file")


def unsafe_installs(path: str, text: str) -> list[UnsafeInstall]:
    """Every line of ``text`` (the file ``path``) that installs an unpinned or wrong sluice."""
    found: list[UnsafeInstall] = []
    for number, line in enumerate(text.splitlines(), start=1):
        for requirement in sluice_requirements(line):
            problem = requirement.problem()
            if problem is not None:
                found.append(UnsafeInstall(path, number, problem))
    return found
