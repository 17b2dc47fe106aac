"""How long from saving an issue to the preview page showing the change.

Runs the real preview server (in this process, on a free port of 127.0.0.1) over a
temporary copy of the example newsletter, opens the page in headless Chromium, then
saves the issue with a new heading several times, timing each save until the heading
is visible in the phone frame. Stages are timed too: save -> watcher event (server
side), and the rebuild alone. The baseline, side by side, is what an editor does
without the preview: run 'newsletter build' (then reload the browser by hand).

    .venv/bin/python benchmarks/bench_preview.py [--runs 9]

Prints a markdown table (median, min, max in milliseconds).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from newsletter.preview import PreviewServer, Workspace

ROOT = Path(__file__).resolve().parent.parent
ISSUE = Path("issues/2026-11-26-stem-cells-in-breast-milk.md")
HEADING = "## What are stem cells?"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def copy_project(target: Path) -> Path:
    project = target / "project"
    project.mkdir()
    shutil.copy2(ROOT / "newsletter.yaml", project / "newsletter.yaml")
    shutil.copytree(ROOT / "issues", project / "issues")
    return project


def measure_preview(project: Path, runs: int) -> dict[str, list[float]]:
    issue = project / ISSUE
    original = issue.read_text(encoding="utf-8")
    noticed: list[float] = []
    workspace = Workspace(project / "newsletter.yaml", issue=issue)
    server = PreviewServer(
        workspace, port=0, on_change=lambda _paths: noticed.append(time.perf_counter())
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    timings: dict[str, list[float]] = {"to_event": [], "to_page": [], "rebuild": []}
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.page_url(issue))
            page.wait_for_selector("#live[data-state='live']")
            time.sleep(1.0)  # the watcher is up, the first frames are in
            for run in range(runs + 1):  # the first run warms up and is not counted
                marker = f"Heading of run {run}"
                noticed.clear()
                start = time.perf_counter()
                issue.write_text(original.replace(HEADING, f"## {marker}"), encoding="utf-8")
                page.wait_for_function(
                    "marker => { const d = document.getElementById('frame-light-phone')"
                    ".contentDocument; return d && d.body && d.body.innerText.includes(marker) }",
                    arg=marker,
                    polling="raf",
                    timeout=10_000,
                )
                end = time.perf_counter()
                if run == 0:
                    continue
                timings["to_page"].append((end - start) * 1000)
                timings["to_event"].append((noticed[0] - start) * 1000)
                workspace.changes.notify()  # measure one more rebuild on its own
                rebuild_start = time.perf_counter()
                workspace.preview(issue)
                timings["rebuild"].append((time.perf_counter() - rebuild_start) * 1000)
                time.sleep(0.3)
            browser.close()
    finally:
        server.shutdown()
        server.close()
    return timings


def measure_build(project: Path, runs: int) -> list[float]:
    command = [sys.executable, "-m", "newsletter", "build", str(ISSUE), "--out", "build"]
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=project, check=True, capture_output=True)
        durations.append((time.perf_counter() - start) * 1000)
    return durations


def row(label: str, values: list[float]) -> str:
    return f"| {label} | {statistics.median(values):.0f} | {min(values):.0f} | {max(values):.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        project = copy_project(Path(folder))
        preview = measure_preview(project, runs)
        build = measure_build(project, runs)
    print(f"Save to updated preview page, {runs} runs (milliseconds)\n")
    print("| stage | median | min | max |")
    print("| --- | ---: | ---: | ---: |")
    print(row("save -> watcher event", preview["to_event"]))
    print(row("rebuild (read, compile x2, checks)", preview["rebuild"]))
    print(row("**save -> new text on the page**", preview["to_page"]))
    print(row("baseline: `newsletter build` (CLI)", build))
    ratio = statistics.median(preview["to_page"]) / statistics.median(build)
    print(f"\nPreview update / `newsletter build`: {ratio:.2f}x")


if __name__ == "__main__":
    main()
