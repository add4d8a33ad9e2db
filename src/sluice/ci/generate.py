"""``sluice ci generate`` and ``sluice ci check``: the generators of each CI system, by name.

Each backend (:mod:`sluice.ci.github`, ``gitlab``, ``jenkins``, ``circleci``) renders
the same :class:`~sluice.ci.model.Pipeline` into its own file; ``check`` compares the
committed files with what ``generate`` would write, so CI configuration never drifts
from ``sluice.yaml``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.ci.circleci import CircleCI
from sluice.ci.github import GitHubActions
from sluice.ci.gitlab import GitLabCI
from sluice.ci.jenkins import Jenkins
from sluice.ci.model import GENERATED_MARK, CIGenerator, GeneratedFile, build_pipeline
from sluice.errors import UsageError

if TYPE_CHECKING:
    from sluice.workspace.project import Project

GENERATORS: dict[str, CIGenerator] = {"github": GitHubActions(), "gitlab": GitLabCI(),
                                      "jenkins": Jenkins(), "circleci": CircleCI()}


def _generator(system: str) -> CIGenerator:
    if system not in GENERATORS:
        from sluice.util.suggest import did_you_mean

        raise UsageError(f"unknown CI system `{system}`" + did_you_mean(system, list(GENERATORS)),
                         hint="use one of: " + ", ".join(GENERATORS))
    return GENERATORS[system]


def generate(project: Project, system: str) -> GeneratedFile:
    """The CI file of ``system`` for ``project``, as text (nothing is written)."""
    generator = _generator(system)
    text = generator.render(build_pipeline(project.config.spec))
    return GeneratedFile(system=system, path=generator.path, text=text)


def write(project: Project, generated: GeneratedFile) -> Path:
    from sluice.util.fs import atomic_write_bytes

    target = project.root / generated.path
    atomic_write_bytes(target, generated.text.encode())
    return target


@dataclass(frozen=True)
class FileCheck:
    """One committed CI file compared with what ``generate`` would write."""

    system: str
    path: str
    status: str  # "current", "drifted", or "foreign" (no sluice header: not compared)
    diff: str = ""
    # Lines that install sluice from an index by the wrong name or unpinned (any file).
    unsafe: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"system": self.system, "path": self.path, "status": self.status,
                "diff": self.diff, "unsafe_installs": list(self.unsafe)}


def check(project: Project, systems: list[str] | None = None) -> list[FileCheck]:
    """Compare every generated CI file present in the project with a fresh generation.

    A file without sluice's header (a hand-written Jenkinsfile, say) is reported as
    ``foreign`` and not compared, except the GitHub workflow, whose name is sluice's.
    Every file, foreign ones too, is searched for installs of an unpinned or
    wrongly named sluice (``FileCheck.unsafe``).
    """
    from sluice.ci.install import unsafe_installs
    from sluice.util.version import installed_version

    chosen = systems or list(GENERATORS)
    for system in chosen:
        _generator(system)
    results: list[FileCheck] = []
    for system in chosen:
        path = project.root / GENERATORS[system].path
        if not path.is_file():
            continue
        committed = path.read_text(encoding="utf-8", errors="replace")
        unsafe = tuple(u.render(installed_version())
                       for u in unsafe_installs(GENERATORS[system].path, committed))
        # Any line of sluice's header marks the file as sluice's: deleting the first
        # one must not turn a generated file into a "foreign" one that is never checked.
        ours = GENERATED_MARK in committed or "sluice ci generate" in committed
        if not ours and system != "github":
            results.append(FileCheck(system, GENERATORS[system].path, "foreign", "", unsafe))
            continue
        fresh = generate(project, system)
        if committed == fresh.text:
            results.append(FileCheck(system, fresh.path, "current", "", unsafe))
            continue
        diff = "".join(difflib.unified_diff(
            committed.splitlines(keepends=True), fresh.text.splitlines(keepends=True),
            fromfile=f"{fresh.path} (committed)", tofile=f"{fresh.path} (from sluice.yaml)"))
        results.append(FileCheck(system, fresh.path, "drifted", diff, unsafe))
    if not results:
        raise UsageError("no generated CI file found in the project",
                         hint="write one with `sluice ci generate github --write` (or gitlab, "
                              "jenkins, circleci) and commit it")
    return results
