"""The comment's text: the report's Markdown, with its marker, images a forge can show, and
truncation to the forge's size limit.

A pull-request comment cannot show the report's local PNG files; each image becomes
a link to the CI run's artifacts, or, with ``--image-base-url``, an image served from
where the team uploads them.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<target>[^)\s]+)\)")
REMOTE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def rewrite_images(markdown: str, folder_rel: str, image_base_url: str | None,
                   artifact_url: Callable[[str], str | None]) -> str:
    """Local image references replaced by something a comment can show.

    ``folder_rel`` is the report's folder relative to the repository root (as the CI
    job uploads it); ``artifact_url(path)`` gives the artifacts link of a file or None.
    """
    def replace(match: re.Match[str]) -> str:
        alt, target = match["alt"], match["target"]
        if REMOTE.match(target):
            return match[0]
        name = target.rsplit("/", 1)[-1]
        if image_base_url:
            return f"![{alt}]({image_base_url.rstrip('/')}/{urllib.parse.quote(name)})"
        link = artifact_url(f"{folder_rel}/{name}")
        if link:
            return f"[📈 {alt or name}]({link}) (plot, in the run's artifacts)"
        return f"📈 `{name}` (plot in `{folder_rel}/`, not uploaded)"

    return IMAGE.sub(replace, markdown)


def fit(body: str, limit: int, full_report: str) -> tuple[str, bool]:
    """``body`` cut at a line boundary to at most ``limit`` characters, with a note that says
    so and where the whole report is; (text, truncated)."""
    if len(body) <= limit:
        return body, False

    def note_for(shown: int) -> str:
        return (f"\n\n---\n_✂️ Report truncated to fit the comment limit ({shown:,} of "
                f"{len(body):,} characters shown). The full report: {full_report}._\n")

    room = limit - len(note_for(len(body)))
    if room <= 0:
        raise ValueError(f"a comment limit of {limit} characters leaves no room for a report")
    cut = body.rfind("\n", 0, room)
    kept = body[:cut if cut > 0 else room]
    return kept + note_for(len(kept)), True
