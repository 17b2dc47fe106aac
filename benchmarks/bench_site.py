"""Static site benchmark: ``newsletter site build`` for many sent issues.

    python benchmarks/bench_site.py [--issues 500]

Makes a copy of the example newsletter with ISSUES campaigns, each with a snapshot of
an issue the size of the seed issue (its text, with a different title and date), then
times ``build_site`` as the CLI runs it (database read, every page, feed and image
written) and reports the largest page. Prints a Markdown table (figures in docs/performance.md).
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from newsletter.config import load_config
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.send import campaign_rows
from newsletter.site.export import build_site
from newsletter.site.published import _parse
from newsletter.store import open_store
from newsletter.store.snapshots import save_snapshot, snapshot_row

ROOT = Path(__file__).resolve().parent.parent
SEED = "2026-11-26-stem-cells-in-breast-milk.md"


def make_project(folder: Path, issues: int) -> Path:
    for name in ("newsletter.yaml", "issues", "templates"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, folder / name)
        else:
            shutil.copy2(source, folder / name)
    config = load_config(folder / "newsletter.yaml")
    seed_path = config.issues_dir / SEED
    seed_source = seed_path.read_text(encoding="utf-8")
    compiled = compile_issue(read_issue(seed_path, topics=config.topic_ids), config)
    store = open_store(config)
    try:
        first = dt.date(2020, 1, 1)
        for number in range(issues):
            date = first + dt.timedelta(days=7 * number)
            slug = f"issue-{number:04d}"
            source = seed_source.replace(
                'title: "Stem Cells: The Medicine in Breast Milk?"',
                f'title: "Issue {number}: Stem Cells"',
            ).replace("date: 2026-11-26", f"date: {date.isoformat()}")
            path = config.issues_dir / f"{date.isoformat()}-{slug}.md"
            campaign = campaign_rows.start_campaign(
                store, slug=slug, issue_path=str(path), subject=compiled.subject,
                topics=["research"], provider="outbox",
            )  # fmt: skip
            row = snapshot_row(compiled, source, config.root)
            row.update(slug=slug, issue_path=str(path), issue_date=date)
            save_snapshot(store, campaign.id, row)
    finally:
        store.close()
    return folder / "newsletter.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        config = load_config(make_project(folder, args.issues))
        times = []
        for run in range(args.runs):
            out = folder / f"site-{run}"
            started = time.perf_counter()
            _parse.cache_clear()  # each run as a fresh `newsletter site build` process
            summary = build_site(config, out)
            times.append(time.perf_counter() - started)
        pages = list(out.rglob("*.html"))
        largest = max(pages, key=lambda page: page.stat().st_size)
        largest_size = largest.stat().st_size / 1024
        largest_name = largest.relative_to(out)
        feeds = ", ".join(
            f"{name} {(out / name).stat().st_size / 1024:.0f} KB"
            for name in ("feed.xml", "rss.xml")
        )
    best, worst = min(times), max(times)
    print("| measure | result |\n| --- | --- |")
    what = f"site build, {summary.issues} issues ({summary.pages} files)"
    print(f"| {what} | {best:.2f} s best, {worst:.2f} s worst |")
    print(f"| largest page before images | {largest_size:.1f} KB ({largest_name}) |")
    print(f"| feeds (newest 20, full content) | {feeds} |")


if __name__ == "__main__":
    main()
