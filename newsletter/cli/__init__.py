"""The ``newsletter`` command: a thin face over the library.

Each command parses its options, calls one library function and prints. Library
errors (:class:`~newsletter.errors.NewsletterError`) become one ``Error: ...`` line
and exit 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import gc
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from newsletter import __version__
from newsletter.cli.lazy import LazyCommand, LazyGroup
from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    from newsletter.config import Config


@dataclass
class State:
    config_path: Path | None
    debug: bool
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            # Imported here: pydantic is not needed for --help or init.
            from newsletter.config import find_config, load_config

            self._config = load_config(self.config_path or find_config())
        return self._config


pass_state = click.make_pass_decorator(State)


_RENDER = "newsletter.cli.render_commands"
_SEND = "newsletter.cli.send_commands"
_SUBSCRIBERS = "newsletter.cli.subscriber_commands"
_SCHEDULE = "newsletter.cli.schedule_commands"
_DELIVERABILITY = "newsletter.cli.deliverability_commands"
# name -> where it is registered, and its one-line help (a test keeps these in step).
COMMANDS = {
    "init": LazyCommand(_RENDER, "Create a newsletter folder that builds out of the box."),
    "new": LazyCommand(_RENDER, "Start a new issue, dated today, from the starter template."),
    "build": LazyCommand(_RENDER, "Render ISSUE into email.html, email.txt and email.mjml."),
    "check": LazyCommand(_RENDER, "Check ISSUES for problems before sending; exit 1 on any error."),
    "preview": LazyCommand(
        "newsletter.cli.preview_commands",
        "Preview ISSUE in the browser, updated on every save; without ISSUE, list all issues.",
    ),
    "send": LazyCommand(
        _SEND, "Send ISSUE to its subscribers; sending it again resumes where it stopped."
    ),
    "status": LazyCommand(
        "newsletter.cli.status_commands",
        "Show each campaign (or ISSUE's): recipients, sent, failed, unknown, pending, errors.",
    ),
    "subscribers": LazyCommand(
        _SUBSCRIBERS,
        "Keep the subscriber list: import, add, remove, forget, show, list, export, count.",
    ),
    "db": LazyCommand(
        "newsletter.cli.db_commands",
        "The database: upgrade its schema, back it up, restore it, copy it elsewhere.",
    ),
    "deploy": LazyCommand(
        "newsletter.cli.deploy_commands",
        "Write the files that run the newsletter on a server, for review.",
    ),
    "flush-mail": LazyCommand(
        "newsletter.cli.mail_commands",
        "Send the mail the web app queued (signup confirmations, manage links) that is due.",
    ),
    "mailbox": LazyCommand(
        "newsletter.cli.mailbox_commands",
        "Read back the mail that returns: bounces, complaints, mailto unsubscribes.",
    ),
    "site": LazyCommand(
        "newsletter.cli.site_commands",
        "Build the public site (web versions of the sent issues, archive, feeds) as files.",
    ),
    "schedule": LazyCommand(
        _SCHEDULE,
        "List scheduled issues: when (in the editor's time zone), audience, provider.",
    ),
    "automations": LazyCommand(
        "newsletter.cli.automation_commands",
        "List each sequence: its steps, who is in it, who is due now, what was sent.",
    ),
    "run-due": LazyCommand(
        _SCHEDULE,
        "Send every scheduled issue and every automation step whose time has come, then exit.",
    ),
    "report": LazyCommand(
        "newsletter.cli.report_commands", "How each issue did, and the list over time."
    ),
    "doctor": LazyCommand(
        _DELIVERABILITY,
        "Check that the sender's domain is ready to send; exit 1 on any error.",
    ),
    "dkim": LazyCommand(_DELIVERABILITY, "DKIM signing keys for sending through SMTP (smtp.dkim)."),
    "serve": LazyCommand(
        "newsletter.cli.web_commands",
        "Serve the subscriber web app: unsubscribe and preference pages, signup with double "
        "opt-in, and the SendGrid event webhook.",
    ),
}


class NewsletterGroup(LazyGroup):
    """Turns library errors into clean ``Error:`` lines unless ``--debug`` is given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as error:
            state = ctx.find_object(State)
            if state is not None and state.debug:
                raise
            raise click.ClickException(_printable(str(error))) from None
        except Exception as error:
            if not _is_database_error(error):
                raise
            # Disk full, a read-only file, a lost connection: one line, not a traceback.
            state = ctx.find_object(State)
            if state is not None and state.debug:
                raise
            from sqlalchemy.exc import SQLAlchemyError  # loaded: _is_database_error said so

            from newsletter.store.db_errors import database_error

            assert isinstance(error, SQLAlchemyError)
            url = state.config.database if state is not None and state._config else ""
            raise click.ClickException(str(database_error(error, url))) from None


def _printable(message: str) -> str:
    """An error's message as the terminal gets it: its lines kept, any other control
    character written as an escape. Errors quote strangers' words (an SMTP server's
    refusal, a value read from a file), which must not drive the terminal."""
    from newsletter.safe_text import visible

    return "\n".join(visible(line) for line in message.split("\n"))


def _is_database_error(error: Exception) -> bool:
    # Only a command that loaded SQLAlchemy can raise its errors; the others (--help,
    # build) must not pay for importing it just to catch them.
    exceptions = sys.modules.get("sqlalchemy.exc")
    return exceptions is not None and isinstance(error, exceptions.SQLAlchemyError)


@click.group(
    cls=NewsletterGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="NEWSLETTER_CONFIG",
    help="newsletter.yaml to use (default: the nearest one in this folder or above).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """Publish an email newsletter from Markdown issues.

    \b
    Start here:
      newsletter init my-newsletter && cd my-newsletter
      newsletter new "Our first issue"
      newsletter check issues/*.md
      newsletter build issues/2026-11-26-our-first-issue.md
    """
    ctx.obj = State(config_path=config_path, debug=debug)


def main() -> None:
    # pydantic looks for plugins in every installed package's metadata the first time a
    # model validates: a tenth of a `newsletter build`. The CLI uses none; an editor who
    # does can still set the variable to a list of the plugins to skip.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    try:
        cli(prog_name="newsletter")
    finally:
        # The interpreter's last garbage collections walk every object the imports made,
        # a tenth of a `newsletter build`; frozen objects are skipped. Nothing here relies
        # on a finalizer at exit: files and connections are closed where they are used.
        gc.freeze()
