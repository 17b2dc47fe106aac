"""``flush-mail``: send the confirmation and manage-link mail the web app queued."""

from __future__ import annotations

import click

from newsletter.cli import State, cli, pass_state
from newsletter.send.mail_queue import Letter, queue_state, send_due
from newsletter.send.providers import Delivery
from newsletter.send.transactional import send_transactional
from newsletter.store import open_store


@cli.command("flush-mail")
@pass_state
def flush_mail(state: State) -> None:
    """Send the mail the web app queued (signup confirmations, manage links) that is due.

    The web app sends it within seconds on its own; run this when the web app is
    stopped, or from cron as a safety net. It shows what is still waiting and what
    was given up on.

    \b
    Example:
      newsletter flush-mail
    """
    config = state.config

    def send(letter: Letter) -> Delivery:
        return send_transactional(
            config, to=letter.to, subject=letter.subject, html=letter.html, text=letter.text
        )

    store = open_store(config)
    try:
        tally = send_due(store.engine, send)
        left = queue_state(store.engine)
    finally:
        store.close()
    click.echo(
        f"Sent {tally.sent}, to retry later {tally.retrying}, given up {tally.failed}; "
        f"queued {left.waiting}, failed in the queue {left.failed}."
    )
    for error in tally.errors:
        click.echo(f"Gave up: {error}", err=True)
    if left.next_due is not None and left.waiting:
        click.echo(f"Next retry due at {left.next_due:%Y-%m-%d %H:%M:%S} UTC.")
