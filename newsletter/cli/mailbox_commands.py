"""``newsletter mailbox``: read bounces, complaints and mailto unsubscribes back."""

from __future__ import annotations

import json

import click

from newsletter.cli import State, cli, pass_state
from newsletter.send.mailbox import MailboxSummary, process_mailbox


@cli.group()
def mailbox() -> None:
    """Read back the mail that returns: bounces, complaints, mailto unsubscribes."""


@mailbox.command()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_state
def process(state: State, as_json: bool) -> None:
    """Process the mailbox named by mailbox.url in newsletter.yaml.

    Hard bounces mark the subscriber bounced and the campaign's ledger row failed;
    soft bounces count toward bounces.soft_bounce_limit; a policy block (the
    receiving server refused the content or the sender, 5.7.x) fails that copy and
    suppresses nobody; abuse reports (ARF) mark the
    subscriber complained; mail to the List-Unsubscribe mailto unsubscribes the person
    that copy was sent to. Each is matched to a subscriber only by the signed token in
    the return path or the mailto subject. Auto-replies and anything else are left
    alone and counted. A message too large, too deeply nested or too slow to read
    (mailbox.max_message_size, mailbox.message_timeout) is set aside, flagged or moved
    to mailbox.quarantine_folder, and the run goes on. Processed messages are flagged
    (IMAP), moved to cur/ (Maildir) or deleted (POP3), so running it again changes
    nothing; run it from cron.

    \b
    Examples:
      MAILBOX_PASSWORD=... newsletter mailbox process
      newsletter mailbox process --json
    """
    summary = process_mailbox(state.config)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), indent=2))
        return
    for line in summary_lines(summary):
        click.echo(line)


def summary_lines(summary: MailboxSummary) -> list[str]:
    counts = summary.counts
    return [
        f"Read {summary.source}",
        f"Hard bounces: {counts['hard_bounce']} ({summary.ledger_failed} ledger row(s) failed)",
        f"Soft bounces: {counts['soft_bounce']}",
        f"Blocked (policy, not the address; nobody suppressed): {counts['blocked']} "
        f"({summary.ledger_blocked} ledger row(s) failed)",
        f"Subscribers marked bounced: {summary.bounced} (hard bounces, and soft ones at "
        "bounces.soft_bounce_limit)",
        f"Complaints: {counts['complaint']} ({summary.complained} subscriber(s) marked complained)",
        f"Unsubscribes by mail: {counts['unsubscribe']} "
        f"({summary.unsubscribed} subscriber(s) unsubscribed)",
        f"Without a valid token, ignored: {counts['unverified']}",
        f"Auto-replies, left alone: {counts['auto_reply']}",
        f"Other messages, left alone: {counts['other']}",
        f"Set aside (quarantine): {counts['quarantine']}, "
        + (
            f"moved to {summary.quarantine_folder}"
            if summary.quarantine_folder
            else "left in the mailbox, flagged"
        ),
        *(f"  {label}: {reason}" for label, reason in summary.quarantined),
        f"Already processed by an earlier run: {summary.already_processed}",
    ]
