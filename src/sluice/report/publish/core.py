"""``publish_report``: put a run's report on its pull/merge request, updating it in place.

The comment starts with a hidden marker per tier (``<!-- sluice-report:pr -->``), so a
later push edits the same comment instead of adding one, and the ``pr`` and ``merge``
tiers do not overwrite each other. A failure to publish is returned as a warning
unless ``require`` is set: a missing token must not fail a pull request's checks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.ci.base import ci_system
from sluice.errors import PublishError, UsageError
from sluice.report.publish.base import Comment, Publisher, PublishOptions, Target, marker
from sluice.report.publish.body import fit, rewrite_images
from sluice.report.publish.github import GitHubPublisher
from sluice.report.publish.gitlab import GitLabPublisher
from sluice.report.publish.jenkins import from_jenkins
from sluice.util.credentials import mask
from sluice.util.http import HttpFailure
from sluice.workspace.project import Project

PUBLISHERS: dict[str, Publisher] = {"github": GitHubPublisher(), "gitlab": GitLabPublisher()}


@dataclass
class PublishResult:
    """Where the report went (or why it did not); ``report`` and ``folder`` are the report
    itself, so the caller can show it without loading it again."""

    run_id: str
    published: bool
    key: str
    platform: str | None = None
    target: str | None = None
    action: str | None = None  # "created" or "updated"
    url: str | None = None
    comment_id: int | None = None
    truncated: bool = False
    error: str | None = None
    report: dict[str, Any] = field(default_factory=dict, repr=False)
    folder: Path | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"published": self.published, "platform": self.platform, "target": self.target,
                "action": self.action, "url": self.url, "comment_id": self.comment_id,
                "key": self.key, "truncated": self.truncated, "error": self.error}


def detect_platform(env: Mapping[str, str], options: PublishOptions) -> str:
    """``--platform``, else the forge whose CI runs this job (``ci_system``, shared with
    ``--base auto`` and the annotations, so they agree on where they run)."""
    if options.platform:
        if options.platform not in PUBLISHERS:
            raise UsageError(f"unknown platform `{options.platform}`",
                             hint="use " + " or ".join(PUBLISHERS))
        return options.platform
    system = ci_system(env)
    if system in PUBLISHERS:
        return system
    where = (f"this job runs in {system}, which is not a forge sluice can comment on"
             if system else "neither GITHUB_ACTIONS nor GITLAB_CI is `true`")
    raise PublishError(f"cannot tell where to publish: {where}",
                       hint="run in GitHub Actions or GitLab CI, or pass --platform "
                            "github|gitlab with --repository and --pr")


def publish_report(project: Project, run_id: str | None, options: PublishOptions,
                   environ: Mapping[str, str] | None = None) -> PublishResult:
    """Publish the report of ``run_id`` (default: the latest run) as a comment.

    Raises ``PublishError`` only when ``options.require``; otherwise a failure comes
    back as ``published=False`` with ``error`` saying what went wrong and what to do.
    Tokens are read from ``environ`` and never appear in a result or an error.
    """
    from sluice.report.run import load_report

    data, folder = load_report(project, run_id)
    env = os.environ if environ is None else environ
    env, options = from_jenkins(env, options)
    key = options.key or str(data.get("tier") or "default")
    mark = marker(key)
    result = PublishResult(run_id=str(data["run_id"]), published=False, key=key,
                           report=data, folder=folder)
    try:
        publisher = PUBLISHERS[detect_platform(env, options)]
        result.platform = publisher.name
        target = publisher.detect(env, options)
        result.target = target.describe()
        comment, result.action, result.truncated = _post(publisher, target, project, data,
                                                         folder, options, mark)
    except PublishError as error:
        # The tokens' variables are secret by name (…TOKEN), so `mask` finds them in env.
        masked = PublishError(mask(error.message, env),
                              hint=mask(error.hint, env) if error.hint else None)
        if options.require:
            raise masked from None
        result.error = masked.render()
        return result
    result.published, result.url, result.comment_id = True, comment.url, comment.id
    return result


def _post(publisher: Publisher, target: Target, project: Project, data: dict[str, Any],
          folder: Path, options: PublishOptions, mark: str) -> tuple[Comment, str, bool]:
    """Create or update the comment; (comment, "created"/"updated", truncated)."""
    rel = Path(os.path.relpath(folder, project.root)).as_posix()
    saved = folder / "report.md"
    if saved.is_file():
        text = saved.read_text(encoding="utf-8")
    else:
        from sluice.report.run import markdown

        text = markdown(data, data.get("plots"))
    text = rewrite_images(text, rel, options.image_base_url,
                          lambda path: publisher.artifact_url(target, path))
    if target.run_url:
        text += (f"\n<sub>Published by sluice from [this CI run]({target.run_url}); "
                 "later pushes update this comment.</sub>\n")
    page = publisher.artifact_url(target, f"{rel}/")
    full_report = f"[`{rel}/report.md`]({page})" if page else \
        f"`{rel}/report.md` in the CI job's files"
    body, truncated = fit(f"{mark}\n{text}", publisher.body_limit, full_report)
    api = publisher.client(target, options.timeout_s)
    try:
        existing = publisher.find_comment(api, target, mark)
        if existing is None:
            return publisher.create_comment(api, target, body), "created", truncated
        return publisher.update_comment(api, target, existing, body), "updated", truncated
    except HttpFailure as failure:
        raise publisher.explain(target, failure) from None
    except (KeyError, TypeError, ValueError) as error:
        raise PublishError(f"{publisher.name} answered in an unexpected shape ({error!r})",
                           hint=f"check that {target.api_url} is the {publisher.name} API") \
            from None
