"""Start-up: a command imports only what it uses, so `newsletter --help` and
`newsletter build` do not wait for Flask, SQLAlchemy or the preview server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from newsletter.cli import COMMANDS, cli
from tests.conftest import ROOT, SEED_ISSUE

HEAVY = ["sqlalchemy", "flask", "werkzeug", "watchfiles", "sendgrid", "waitress", "PIL"]
# email-validator: a plain From address (the example's) is checked without it.
CHECKED = [*HEAVY, "email_validator"]


def modules_loaded_by(args: list[str], cwd: Path) -> set[str]:
    """Run the CLI in a fresh interpreter and list which heavy packages it imported."""
    script = (
        "import json, sys\n"
        "from newsletter.cli import main\n"
        f"sys.argv = ['newsletter', *{args!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(json.dumps([m for m in {CHECKED!r} + ['pydantic', 'jinja2'] if m in sys.modules]),"
        " file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stderr.strip().splitlines()[-1]))


def test_help_imports_no_library_stage(tmp_path: Path) -> None:
    assert modules_loaded_by(["--help"], tmp_path) == set()


def test_build_imports_neither_the_store_nor_the_web_app(project: Path) -> None:
    loaded = modules_loaded_by(["build", SEED_ISSUE, "--out", "out"], project)
    assert (project / "out" / "stem-cells-in-breast-milk" / "email.html").is_file()
    assert not loaded & (set(CHECKED) - {"PIL"}), loaded  # Pillow: the image pipeline


def test_the_lazy_command_table_matches_the_commands() -> None:
    cli.load_all()
    assert set(COMMANDS) == set(cli.commands)
    for name, lazy in COMMANDS.items():
        command = cli.commands[name]
        assert lazy.summary == command.get_short_help_str(limit=1000), name
        assert command.callback is not None
        assert command.callback.__module__ == lazy.module, name


def test_help_lists_every_command_with_its_summary() -> None:
    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    output = subprocess.run(
        [sys.executable, "-m", "newsletter", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "  build        Render ISSUE into email.html, email.txt and email.mjml.\n" in output
    assert "  serve        Serve the subscriber web app" in output
