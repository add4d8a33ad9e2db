"""Screenshots of `sluice ui` for docs/ui.md, taken with Debian's Chromium via Playwright.

    python scripts/screenshots.py BASE_URL TOKEN OUT_DIR

Run by scripts/screenshots.sh (`make screenshots`), which makes the project and
starts the server. Signs in with TOKEN, then saves the overview, the latest
run, a model and the budgets as OUT_DIR/ui-*.png.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

PAGES = {"overview": "/", "model": "/models/churn", "budgets": "/budgets"}


def main() -> None:
    from playwright.sync_api import sync_playwright

    base, token, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/signin")
            page.fill("#token", token)
            page.keyboard.press("Enter")
            page.wait_for_load_state()
            for name, path in PAGES.items():
                page.goto(base + path)
                page.screenshot(path=str(out / f"ui-{name}.png"), full_page=True)
            page.goto(base + "/")
            page.click("#latest a")  # the latest merge run (tiers in name order)
            page.wait_for_load_state("load")
            page.screenshot(path=str(out / "ui-run.png"), full_page=True)
        finally:
            browser.close()
    print("\n".join(str(p) for p in sorted(out.glob("ui-*.png"))))


if __name__ == "__main__":
    main()
