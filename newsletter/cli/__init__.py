"""The ``newsletter`` command: a thin face over the library.

Each command parses its options, calls one library function and prints. Library
errors (:class:`~newsletter.errors.NewsletterError`) become one ``Error: ...`` line
and exit 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from newsletter import __version__
from newsletter.config import Config, find_config, load_config
from newsletter.errors import NewsletterError


@dataclass
class State:
    config_path: Path | None
    debug: bool
    _config: Config | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path or find_config())
        return self._config


pass_state = click.make_pass_decorator(State)


class NewsletterGroup(click.Group):
    """Turns library errors into clean ``Error:`` lines unless ``--debug`` is given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NewsletterError as error:
            state = ctx.find_object(State)
            if state is not None and state.debug:
                raise
            raise click.ClickException(str(error)) from None


@click.group(cls=NewsletterGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    cli(prog_name="newsletter")


# The command modules register themselves on `cli`; imported last, as they import it.
from newsletter.cli import (  # noqa: E402
    mailbox_commands,  # noqa: F401
    preview_commands,  # noqa: F401
    render_commands,  # noqa: F401
    report_commands,  # noqa: F401
    schedule_commands,  # noqa: F401
    send_commands,  # noqa: F401
    subscriber_commands,  # noqa: F401
    web_commands,  # noqa: F401
)
