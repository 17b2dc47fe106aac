"""Screenshots of a built issue at phone and desktop width, for the README.

    python scripts/screenshot_email.py build/stem-cells-in-breast-milk/email.html docs/images

Needs Debian's chromium and the playwright package (installed with the test extras).
Images under build/assets are served through a local route so nothing is fetched online.
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import Route, sync_playwright

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main(html_path: Path, out_dir: Path, *, dark: bool = False) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    build_dir = html_path.parent.parent
    html = html_path.read_text(encoding="utf-8")

    def serve_assets(route: Route) -> None:
        path = route.request.url.split("/assets/", 1)[-1]
        local = build_dir / "assets" / path
        if local.is_file():
            route.fulfill(path=str(local))
        else:
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for name, width in (("phone", 375), ("desktop", 800)):
            page = browser.new_page(
                viewport={"width": width, "height": 900}, color_scheme="dark" if dark else "light"
            )
            page.route("**/assets/**", serve_assets)
            page.set_content(html, wait_until="load")
            suffix = "-dark" if dark else ""
            # The top of the issue: header, title, hero and the first section.
            page.screenshot(
                path=str(out_dir / f"seed-{name}{suffix}.png"),
                full_page=True,
                clip={"x": 0, "y": 0, "width": width, "height": 1500},
            )
            page.close()
        browser.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), dark="--dark" in sys.argv)
