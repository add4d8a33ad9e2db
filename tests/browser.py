"""Debian's Chromium for the browser tests: installed by the system's package manager
(.ci/run), driven by Playwright; never a browser download (`playwright install`)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None,
                                    reason="Chromium is not installed (.ci/run installs it)")


def launch(playwright: Any) -> Any:
    """A headless Chromium that works as root in a container, without a GPU or network."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--no-first-run", "--disable-background-networking"])
