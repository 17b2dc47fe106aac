"""Take the screenshots of the HTML report in docs/reports.md: docs/images/report-*.png.

Copies the example newsletter into a temporary folder, imports its example list, sends
four issues to the local outbox (three with long titles, as editors write them), lets
a few readers unsubscribe, writes `newsletter report --format html` and photographs it
with headless Chromium (Debian's, driven by Playwright) at 1200 and 390 px. Refresh
them after a visible change to the report:

    .venv/bin/python scripts/screenshot_report.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner
from playwright.sync_api import sync_playwright

from newsletter.cli import cli
from newsletter.config import load_config
from newsletter.store import open_store

ROOT = Path(__file__).resolve().parent.parent
SEED = "issues/2026-11-26-stem-cells-in-breast-milk.md"
TITLES = [
    "The latest from Crock Journal: winter stockpots, ferments and a lid that fits",
    "Milk banks, explained: who gives, who receives and how it is screened",
    "Twelve questions about donor milk that readers sent us this autumn",
]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def build_report(folder: Path) -> Path:
    for name in ("newsletter.yaml", "issues", "templates", "subscribers.example.csv"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy2(source, folder / name)
    os.chdir(folder)
    os.environ.pop("NEWSLETTER_DATABASE_URL", None)
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(cli, list(args))
        if result.exit_code != 0:
            sys.exit(f"newsletter {' '.join(args)} failed:\n{result.output}")

    run("subscribers", "import", "subscribers.example.csv")
    issues = [SEED]
    for number, title in enumerate(TITLES, start=1):
        path = folder / "issues" / f"2026-12-0{number}-long-{number}.md"
        path.write_text(
            f'---\ntitle: "{title}"\npreheader: What is in this issue.\ntopics: []\n---\nHello.\n',
            encoding="utf-8",
        )
        issues.append(str(path))
    store = open_store(load_config(folder / "newsletter.yaml"))
    try:
        active = [subscriber.id for subscriber in store.recipients(None)]
        for campaign, issue in enumerate(issues, start=1):
            run("send", issue, "--yes")
            for reader in active[campaign * 3 : campaign * 3 + campaign]:
                store.unsubscribe(reader, source="web", campaign_id=campaign)
    finally:
        store.close()
    run("report", "--format", "html", "--out", "report.html")
    return folder / "report.html"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    arguments = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("Chromium is not installed (apt-get install chromium)")
    out = arguments.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="newsletter-report-") as folder:
        report = build_report(Path(folder))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for width in (1200, 390):
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(report.as_uri())
                target = out / f"report-{width}.png"
                page.screenshot(path=target, full_page=True)
                print(f"wrote {target}")
                page.close()
            browser.close()


if __name__ == "__main__":
    main()
