"""The README and docs/ point only at files that are in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # examples, not links


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_name_files_in_the_repository(page: Path) -> None:
    text = page.read_text()
    missing = [target for target in LINK.findall(CODE.sub("", text))
               if "://" not in target and not target.startswith(("#", "mailto:"))
               and not (page.parent / target.split("#")[0]).exists()]
    assert missing == []
    # The design document lives outside the repository: a reader cannot follow it.
    assert "DESIGN.md" not in text


def test_the_starter_config_says_where_its_reference_is() -> None:
    # `sluice init` writes into the user's repository, which has no docs/config.md.
    from sluice.orchestrate.init import STARTER

    assert "docs/config.md in the sluice repository" in " ".join(
        line.lstrip("# ") for line in STARTER.splitlines()[:3])
    assert (ROOT / "docs" / "config.md").is_file()
