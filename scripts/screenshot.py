"""Take the README's screenshot of the preview page: docs/images/preview.png.

Serves the example newsletter in this repository with the real preview server on a
free port of 127.0.0.1 and photographs the page with headless Chromium (Debian's,
driven by Playwright). Refresh it after a visible change to the page:

    .venv/bin/python scripts/screenshot.py
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

from newsletter.preview import PreviewServer, Workspace

ROOT = Path(__file__).resolve().parent.parent
ISSUE = ROOT / "issues" / "2026-11-26-stem-cells-in-breast-milk.md"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "preview.png")
    parser.add_argument("--tab", default="email", choices=["email", "dark", "text", "headers"])
    arguments = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")

    workspace = Workspace(ROOT / "newsletter.yaml", issue=ISSUE)
    with PreviewServer(workspace, host="127.0.0.1", port=0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
            page.goto(f"{server.page_url(ISSUE)}#{arguments.tab}")
            page.wait_for_selector("#live[data-state='live']")
            page.wait_for_load_state("networkidle")
            arguments.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=arguments.out)
            browser.close()
        server.shutdown()
    print(f"wrote {arguments.out}")


if __name__ == "__main__":
    main()
