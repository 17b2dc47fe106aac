"""Writing one message's headers and body: this tree against a baseline commit, side by side.

    python benchmarks/bench_headers.py [--baseline 35439b7] [--messages 5000] [--runs 5]

The outbox and SMTP providers write one message per recipient with
``render.mail.message_bytes``; its headers are the part that changed with the RFC 2047
fix (issue 20, item 5). The baseline's ``render/mail.py`` is read from git and run in
the same process, alternately with this tree's, on the same headers: a plain ASCII
copy, a non-ASCII recipient name, and a non-ASCII subject. Prints microseconds per
message (median of the runs) and the ratio.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.render import mail  # noqa: E402

HTML = "<p>Stem cells in breast milk.</p>"
TEXT = "Stem cells in breast milk."
CASES = {
    "ASCII name and subject": ("Anna Smith", "Stem Cells: The Medicine in Breast Milk?"),
    "non-ASCII name": ("Zoë Ünal-Çelik", "Stem Cells: The Medicine in Breast Milk?"),
    "non-ASCII subject": ("Anna Smith", "Zürich, Kraków und 東京 über Stammzellen in Muttermilch"),
}


def baseline_module(commit: str) -> ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:newsletter/render/mail.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_mail.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("baseline_mail", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def headers_for(module: ModuleType, n: int, name: str, subject: str) -> dict[str, str]:
    return {
        "From": module.format_address("letters@breastfeedingworld.example", "Breastfeeding World"),
        "To": module.format_address(f"reader{n}@example.org", f"{name} {n}"),
        "Subject": subject,
        "Date": "Thu, 26 Nov 2026 08:00:00 +0000",
        "Message-ID": f"<{n}.1@breastfeedingworld.example>",
        "List-Unsubscribe": f"<https://news.breastfeedingworld.example/u/{'T' * 90}{n}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": "Breastfeeding World <breastfeeding-world.news.breastfeedingworld.example>",
    }


def per_message(module: ModuleType, messages: int, name: str, subject: str) -> float:
    write: Callable[..., bytes] = module.message_bytes
    start = time.perf_counter()
    for n in range(messages):
        headers: Mapping[str, str] = headers_for(module, n, name, subject)
        write(headers, html=HTML, text=TEXT)
    return (time.perf_counter() - start) / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="35439b7")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    old = baseline_module(args.baseline)
    print(f"| headers and body of one message | {args.baseline} (µs) | this tree (µs) | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for label, (name, subject) in CASES.items():
        before, after = [], []
        for _ in range(args.runs):
            before.append(per_message(old, args.messages, name, subject))
            after.append(per_message(mail, args.messages, name, subject))
        old_us, new_us = statistics.median(before), statistics.median(after)
        print(f"| {label} | {old_us:.1f} | {new_us:.1f} | {old_us / new_us:.2f}x |")


if __name__ == "__main__":
    main()
