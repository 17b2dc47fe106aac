"""``newsletter status``: each campaign, how it went and what readers did after it."""

from __future__ import annotations

import json

import click

from newsletter.cli import State, cli, pass_state
from newsletter.cli.send_plan_text import counts_line
from newsletter.config import Config
from newsletter.send.status import campaign_status, unknown_hint


@cli.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the campaigns as JSON.")
@pass_state
def status(state: State, issue: str | None, as_json: bool) -> None:
    """Show each campaign (or ISSUE's): recipients, sent, failed, unknown, pending, errors.

    Also what readers did after it: how many unsubscribed through it, and the opens and
    clicks the provider reported when its tracking is on (sendgrid.tracking,
    postmark.tracking, mailgun.tracking, ses.tracking).

    ISSUE is an issue file or its slug.

    \b
    Examples:
      newsletter status
      newsletter status issues/2026-11-26-stem-cells-in-breast-milk.md
    """
    statuses = campaign_status(state.config, issue)
    if as_json:
        click.echo(json.dumps([item.as_dict() for item in statuses], indent=2, default=str))
        return
    if not statuses:
        click.echo("No campaigns yet." if issue is None else f"No campaign for {issue} yet.")
        return
    for item in statuses:
        campaign = item.campaign
        finished = (
            f"finished {campaign.finished_at:%Y-%m-%d %H:%M} UTC"
            if campaign.finished_at
            else "not finished"
        )
        if item.counts["unknown"]:
            finished = f"not finished: {item.counts['unknown']} unknown"
        click.echo(
            f"{campaign.slug}: campaign {campaign.id} via {campaign.provider}, topics "
            f"{', '.join(campaign.topics) or '(all)'}"
        )
        click.echo(f"  started {campaign.created_at:%Y-%m-%d %H:%M} UTC, {finished}")
        click.echo(f"  {campaign.recipients} recipient(s): {counts_line(item.counts)}")
        click.echo(f"  after it: {_reactions_line(item.reactions, state.config)}")
        if item.subject_test:
            click.echo(f"  subject test: winner {item.subject_test}")
        if item.handovers:
            # Refused and unknown copies included: not "handed over", which is only
            # what a provider accepted (campaign_rows.handed_over).
            given = ", ".join(f"{name} {count}" for name, count in item.handovers.items())
            click.echo(f"  messages to providers: {given} (accepted, refused or unknown)")
        if item.blocked:
            click.echo(
                f"  blocked: {item.blocked} copy(ies) refused for the content or the sender "
                "(policy), not the address; nobody suppressed (docs/deliverability.md)"
            )
        for who, error in item.first_errors:
            click.echo(f"  error: {who}: {error}")
        if campaign.last_error:
            click.echo(f"  stopped: {campaign.last_error}")
        if item.counts["unknown"]:
            click.echo(f"  unknown: {unknown_hint(campaign.provider)}")


def _reactions_line(reactions: dict[str, int], config: Config) -> str:
    # Opens and clicks only where they can be counted: "0 opens" would mislead otherwise.
    tracked = config.provider_tracking or reactions["open"] or reactions["click"]
    shown = reactions if tracked else {"unsubscribed": reactions["unsubscribed"]}
    return ", ".join(_counted(count, kind) for kind, count in shown.items())


def _counted(count: int, kind: str) -> str:
    return f"{count} {kind}" if kind == "unsubscribed" or count == 1 else f"{count} {kind}s"
