"""Providers side by side: Postmark, Mailgun and SES against SendGrid, in the same run.

    python benchmarks/bench_providers.py [--subscribers 20000] [--runs 3]
                                         [--ses 2000] [--memory 100000]
                                         [--memory-providers sendgrid,postmark,mailgun,ses-bulk]
                                         [--postmark-whole]

Each run sends one whole campaign end to end through the library (plan, snapshot,
ledger, personalisation, hand-off) per provider, in turns (SendGrid, Postmark, Mailgun,
SES in bulk, then again; with ``--postmark-whole``, Postmark also without its template,
each message the whole issue), to its stand-in in *another process*:
tests/fakes/sendgrid.py, tests/fakes/postmark.py, tests/fakes/mailgun.py and
tests/fakes/ses.py (SES v2's ``SendBulkEmail`` and templates; each checking every
request as the real API does). Prints a Markdown table of medians, each against
SendGrid's time for the same list.

``ses-bulk`` is SES as a campaign goes by default: ``SendBulkEmail``, 50 readers a
request through a template. ``--ses N`` also sends N readers one raw ``SendEmail`` each
(``ses.templates: false``) to moto in server mode, which answers each in milliseconds
of its own CPU on the same machine, and to benchmarks/ses_sink.py, a stand-in that
answers at once and keeps nothing (what the sender alone allows): their time for
``--subscribers`` is their rate scaled up, said so in the table. Each row gives the
sender's CPU per recipient (this process, every thread) and the stand-in's.

Memory: peak RSS of a fresh process sending ``--memory`` readers through each provider
in ``--memory-providers`` (0: skipped); ``ses``'s raw messages go to the sink, as moto
keeps every message.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the benchmarks and tests packages too

from benchmarks.bench_send import make_project, populate, send, server  # noqa: E402
from newsletter.config import load_config  # noqa: E402
from tests.fakes.mailgun import API_KEY as MAILGUN_KEY  # noqa: E402
from tests.fakes.mailgun import DOMAIN  # noqa: E402
from tests.fakes.moto import CREDENTIALS, MotoServer, moto_server_command  # noqa: E402
from tests.fakes.postmark import SERVER_TOKEN  # noqa: E402
from tests.fakes.sendgrid import API_KEY as SENDGRID_KEY  # noqa: E402

SENDER = "letters@breastfeedingworld.example"


def settings(provider: str, url: str) -> dict[str, Any]:
    if provider == "sendgrid":
        return {"provider": "sendgrid", "sendgrid": {"api_host": url}}
    if provider == "postmark":
        return {"provider": "postmark", "postmark": {"api_url": url}}
    if provider == "postmark-whole":
        return {"provider": "postmark", "postmark": {"api_url": url, "templates": False}}
    if provider == "mailgun":
        return {"provider": "mailgun", "mailgun": {"api_url": url, "domain": DOMAIN}}
    if provider == "ses-bulk":
        return {"provider": "ses", "ses": {"rate_from_account": False}}
    return {
        "provider": "ses",
        "ses": {"rate_from_account": False, "connections": 8, "templates": False},
    }


def cpu_seconds(pid: int | None = None) -> float:
    """CPU (user + system) of this process, or of process ``pid``, all threads."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listener_pid(url: str) -> int | None:
    """The process listening at ``url`` (a stand-in started by ``server()``), from ss."""
    port = url.rsplit(":", 1)[1].rstrip("/")
    found = subprocess.run(
        ["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"pid=(\d+),", found)
    return int(match.group(1)) if match else None


def run(
    work: Path, provider: str, url: str, count: int, server_pid: int | None = None
) -> dict[str, float]:
    """One campaign; its time, and the CPU per recipient of the sender (and the server's
    with ``server_pid``)."""
    folder = Path(tempfile.mkdtemp(dir=work))
    config = make_project(folder, **settings(provider, url))
    populate(config, count)
    environment = os.environ.copy()
    if url and provider.startswith("ses"):
        os.environ["AWS_ENDPOINT_URL"] = url
    ours, theirs = cpu_seconds(), cpu_seconds(server_pid) if server_pid else 0.0
    try:
        sent, seconds = send(config)
    finally:
        os.environ.clear()
        os.environ.update(environment)
    figures = {
        "seconds": seconds,
        "rate": sent / seconds,
        "cpu_ms": 1000 * (cpu_seconds() - ours) / sent,
    }
    if server_pid:
        figures["server_cpu_ms"] = 1000 * (cpu_seconds(server_pid) - theirs) / sent
    shutil.rmtree(folder)
    assert sent == count, (provider, sent)
    return figures


def memory_child(folder: Path) -> None:
    config = load_config(folder / "newsletter.yaml")
    sent, seconds = send(config)
    print(json.dumps({"peak_mb": peak_rss_mb(), "count": sent, "seconds": seconds}))


def peak_rss_mb() -> float:
    """This process's peak RSS. Not getrusage's ru_maxrss: Linux keeps it across exec,
    so a child of a large parent reports the parent's peak; VmHWM belongs to this image."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_run(work: Path, provider: str, url: str, count: int) -> dict[str, float]:
    folder = work / f"memory-{provider}"
    config = make_project(folder, **settings(provider, url))
    populate(config, count)
    environment = os.environ.copy()
    if provider.startswith("ses"):
        # ses: the sink, as moto would keep every message; ses-bulk: its stand-in
        environment["AWS_ENDPOINT_URL"] = url
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_providers", "--child", str(folder)],
        capture_output=True, text=True, check=True, env=environment, cwd=ROOT,
    )  # fmt: skip
    shutil.rmtree(folder)
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="0: memory only.")
    parser.add_argument("--ses", type=int, default=2_000, help="SES's list (0: skipped).")
    parser.add_argument("--memory", type=int, default=100_000)
    parser.add_argument(
        "--memory-providers",
        default="sendgrid,postmark,mailgun,ses-bulk",
        help="Whose memory to measure.",
    )
    parser.add_argument(
        "--postmark-whole", action="store_true", help="Postmark without templates as well."
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", "benchmark-secret-key-0123456789abcdef")
    os.environ.update(
        SENDGRID_API_KEY=SENDGRID_KEY,
        POSTMARK_SERVER_TOKEN=SERVER_TOKEN,
        MAILGUN_API_KEY=MAILGUN_KEY,
        AWS_EC2_METADATA_DISABLED="true",
        **CREDENTIALS,
    )
    os.environ.pop("NEWSLETTER_DATABASE_URL", None)
    if args.child:
        memory_child(Path(args.child))
        return

    times: dict[str, list[dict[str, float]]] = {}
    memory: dict[str, dict[str, float]] = {}
    with (
        tempfile.TemporaryDirectory() as scratch,
        server("tests.fakes.sendgrid") as sendgrid,
        server("tests.fakes.postmark") as postmark,
        server("tests.fakes.mailgun") as mailgun,
        server("benchmarks.ses_sink") as ses_sink,
        server("tests.fakes.ses") as ses_bulk,
    ):
        work = Path(scratch)
        urls = {
            "sendgrid": sendgrid,
            "postmark": postmark,
            "mailgun": mailgun,
            "ses-bulk": ses_bulk,
        }
        if args.postmark_whole:
            urls["postmark-whole"] = postmark
        moto = None
        command = moto_server_command()
        if args.ses and command:
            moto = MotoServer(command).start()
            import boto3

            boto3.client("ses", endpoint_url=moto.url).verify_email_identity(EmailAddress=SENDER)
        try:
            for _ in range(args.runs):
                for provider, url in urls.items():
                    times.setdefault(provider, []).append(
                        run(work, provider, url, args.subscribers, listener_pid(url))
                    )
                if moto is not None and moto.process is not None:
                    times.setdefault("ses", []).append(
                        run(work, "ses", moto.url, args.ses, server_pid=moto.process.pid)
                    )
                if args.ses:
                    times.setdefault("ses-sink", []).append(
                        run(work, "ses", ses_sink, args.ses, listener_pid(ses_sink))
                    )
            if args.memory:
                for provider in args.memory_providers.split(","):
                    url = ses_sink if provider == "ses" else urls[provider]
                    memory[provider] = memory_run(work, provider, url, args.memory)
        finally:
            if moto is not None:
                moto.stop()

    base = statistics.median(r["seconds"] for r in times.get("sendgrid", [{"seconds": 1}]))
    print(f"\n{args.subscribers:,} recipients, median of {args.runs} runs; load: "
          f"{os.getloadavg()[0]:.1f}\n")  # fmt: skip
    print("| provider | seconds | recipients/s | against SendGrid | target | sender's CPU "
          "a recipient | server's CPU a recipient |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for provider, runs in times.items():
        rate = statistics.median(r["rate"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu_ms"] for r in runs)
        server_cpu = (
            f"{statistics.median(r['server_cpu_ms'] for r in runs):.2f} ms"
            if "server_cpu_ms" in runs[0]
            else ""
        )
        label = provider
        if provider in ("ses", "ses-sink"):
            seconds = args.subscribers / rate
            to = "moto" if provider == "ses" else "the sink"
            label = f"ses ({args.ses:,} sent to {to}, scaled to {args.subscribers:,})"
        print(f"| {label} | {seconds:.1f} | {rate:,.0f} | {seconds / base:.2f}x | <= 2x "
              f"| {cpu:.2f} ms | {server_cpu} |")  # fmt: skip
    if memory:
        print(f"\n| peak RSS sending {args.memory:,} | MB | seconds |\n| --- | --- | --- |")
        for provider, figures in memory.items():
            print(f"| {provider} | {figures['peak_mb']:.0f} | {figures['seconds']:.0f} |")


if __name__ == "__main__":
    main()
