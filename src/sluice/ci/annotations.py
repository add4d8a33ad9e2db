"""What a run shows in CI: collapsible groups, GitHub error annotations, the step summary.

GitHub Actions folds lines between ``::group::`` and ``::endgroup::`` and turns
``::error file=…,line=…::`` lines into annotations on the commit; GitLab folds
``section_start``/``section_end`` markers; other systems get a plain title line.
The run's Markdown report goes to ``$GITHUB_STEP_SUMMARY``. Annotations point
at the line of ``sluice.yaml`` that defines the failing stage or gate.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sluice.ci.base import ci_system
from sluice.util.fs import atomic_write_bytes

BAD_STATUSES = ("failed", "timeout", "budget", "gated")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def group_start(title: str, env: Mapping[str, str] | None = None) -> str:
    """The line that opens a collapsible group titled ``title``."""
    system = ci_system(_env(env))
    if system == "github":
        return f"::group::{title}"
    if system == "gitlab":
        name = re.sub(r"[^a-z0-9_]+", "_", title.lower()).strip("_")[:50] or "sluice"
        return f"\x1b[0Ksection_start:{int(time.time())}:{name}[collapsed=true]\r\x1b[0K{title}"
    return f"== {title}"


def group_end(title: str, env: Mapping[str, str] | None = None) -> str | None:
    """The line that closes the group, or None where groups need no end marker."""
    system = ci_system(_env(env))
    if system == "github":
        return "::endgroup::"
    if system == "gitlab":
        name = re.sub(r"[^a-z0-9_]+", "_", title.lower()).strip("_")[:50] or "sluice"
        return f"\x1b[0Ksection_end:{int(time.time())}:{name}\r\x1b[0K"
    return None


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_annotation(message: str, *, file: str | None = None, line: int | None = None,
                     title: str | None = None) -> str:
    """A GitHub workflow command that shows ``message`` as an error annotation."""
    properties = []
    if file:
        properties.append(f"file={_escape_property(file)}")
        if line:
            properties.append(f"line={line}")
    if title:
        properties.append(f"title={_escape_property(title)}")
    return f"::error {','.join(properties)}::{_escape_data(message)}" if properties \
        else f"::error::{_escape_data(message)}"


def _where(config: Any, *path: str | int) -> tuple[str | None, int | None]:
    try:
        location = config.locate(*path, key=True)
    except Exception:  # a path the YAML does not spell out (a default): no line
        return "sluice.yaml", None
    return location.file, location.line


def _gate_index(config: Any, model: str, gate: Any) -> int:
    """Which of the model's gates produced ``gate`` (same metric, sliced or not)."""
    spec = config.spec.models.get(model)
    for index, candidate in enumerate(spec.gates if spec is not None else []):
        if candidate.metric == gate.metric and bool(candidate.slices) == bool(gate.slice):
            return index
    return 0


def run_annotations(config: Any, outcomes: list[Any], evaluations: list[Any]) -> list[str]:
    """Error annotations for failed stages and failed gates, on their lines in sluice.yaml."""
    lines: list[str] = []
    for outcome in outcomes:
        if outcome.status not in BAD_STATUSES:
            continue
        file, line = _where(config, "stages", outcome.stage)
        detail = outcome.reason or outcome.status
        if outcome.log_tail:
            detail += "\n" + "\n".join(outcome.log_tail[-10:])
        lines.append(error_annotation(detail, file=file, line=line,
                                      title=f"stage {outcome.stage}: {outcome.status}"))
    for evaluation in evaluations:
        for gate in evaluation.gates:
            if gate.verdict != "FAIL":
                continue
            file, line = _where(config, "models", evaluation.model, "gates",
                                _gate_index(config, evaluation.model, gate))
            where = f" [{gate.slice}]" if gate.slice else ""
            lines.append(error_annotation(
                f"{gate.metric} {gate.rule}{where}: {gate.reason}", file=file, line=line,
                title=f"model {evaluation.model}: gate FAILED"))
    return lines


def write_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append ``markdown`` to ``$GITHUB_STEP_SUMMARY``; None when not in GitHub Actions."""
    environ = _env(env)
    target = environ.get("GITHUB_STEP_SUMMARY")
    if ci_system(environ) != "github" or not target:
        return None
    path = Path(target)
    try:
        before = path.read_bytes()
    except FileNotFoundError:
        before = b""
    # Replaced whole (temp file + rename), so a killed run never leaves half a summary.
    atomic_write_bytes(path, before + markdown.encode() + b"\n")
    return path


def after_run(project: Any, result: Any, env: Mapping[str, str] | None = None) -> list[str]:
    """In GitHub Actions: write the run's report to the step summary; return annotations.

    Elsewhere, nothing is written and no line is returned.
    """
    environ = _env(env)
    if ci_system(environ) != "github":
        return []
    if result.report_dir is not None:
        report_md = Path(result.report_dir) / "report.md"
        if report_md.is_file():
            write_step_summary(report_md.read_text(encoding="utf-8"), environ)
    return run_annotations(project.config, list(result.outcomes), list(result.evaluations))
