"""RSS-to-email: at each ``every:`` moment, the feed's new posts become an issue.

``automations: {digest: {feed: URL, every: "monday 9:00", min_items: 1, topics: [...],
approve: true}}``. At each moment (in the config's ``timezone``) ``run-due`` reads the
feed; posts it has not mailed yet (published since the digest was set up) become an
issue in ``issues/``, made by the same code as ``newsletter new --from-feed``, checked
like any issue, then

- ``approve: true`` (the default): left for the editor, held in the schedule with a
  note (``newsletter send FILE`` sends it; ``send FILE --at WHEN`` schedules it);
- ``approve: false``: sent at once as a campaign (held instead if its checks fail).

Fewer new posts than ``min_items``: no mail, and the posts wait for the next moment. A
feed that cannot be fetched or is not a feed: one line, the state kept, and the next
``run-due`` tries the same moment again. What the digest has seen is kept in the
database (:mod:`newsletter.store.digest_tables`).

Sending twice is ruled out by the campaign: the issue of a moment has one file name
(``issues/<date>-<name>-<date>.md``), so a run that died after sending resumes the same
campaign, and the moment is recorded only after the issue was sent or held.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select

from newsletter.author.feed_import import Feed, FeedItem, read_feed, write_digest
from newsletter.automations.digest_state import (
    DigestState,
    digest_settings,
    find_state,
    parse_every_setting,
    record_state,
)
from newsletter.config import AutomationSettings, Config
from newsletter.errors import NewsletterError, SendError
from newsletter.render.issues import issue_slug
from newsletter.send import campaign_rows
from newsletter.send.plan import plan_send
from newsletter.send.schedule import why_stopped
from newsletter.send.schedule_times import issue_hash
from newsletter.send.sending import send_campaign
from newsletter.send.stop_request import signalled
from newsletter.store import Store, open_store
from newsletter.store.digest_tables import SEEN_LIMIT, automation_feeds
from newsletter.store.scheduling import schedules

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Say = Callable[[str], None]

MAX_ITEMS = 30  # posts in one digest, newest first; the rest wait for the next one


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class DigestResult:
    name: str
    # sent, waiting (for approval), held (checks failed), stopped, interrupted (Ctrl-C: the
    # next run resumes it), nothing, failed
    outcome: str
    message: str


def run_due_digests(
    config: Config,
    *,
    clock: Clock = system_clock,
    say: Say | None = None,
    stopping: threading.Event | None = None,
) -> list[DigestResult]:
    """Make (and send, or hold for approval) every digest whose moment has come. Once
    ``stopping`` is set (Ctrl-C), the digest being sent stops before its next hand-over
    and its moment is left unrecorded, so that the next run resumes it; no other
    digest starts."""
    tell = say or (lambda message: log.info("%s", message))
    chosen = digest_settings(config)
    if not chosen:
        return []
    now = clock()
    zone = ZoneInfo(config.timezone)
    store = open_store(config)
    try:
        results = []
        for name, settings in chosen.items():
            if stopping is not None and stopping.is_set():
                break
            result = _run_digest(config, store, name, settings, now, zone, tell, stopping)
            if result is not None:
                results.append(result)
        return results
    finally:
        store.close()


def _run_digest(
    config: Config,
    store: Store,
    name: str,
    settings: AutomationSettings,
    now: dt.datetime,
    zone: ZoneInfo,
    say: Say,
    stopping: threading.Event | None,
) -> DigestResult | None:
    assert settings.feed is not None
    moment = parse_every_setting(settings.every).last(now, zone)
    state = find_state(store, name)
    if state is None:  # first sight: the first digest is at the next moment
        with campaign_rows.write_connection(store.engine) as connection, connection.begin():
            connection.execute(
                insert(automation_feeds).values(
                    name=name, feed=settings.feed, started_at=moment, last_slot=moment,
                    seen=[], checked_at=now,
                )
            )  # fmt: skip
        return None
    if moment <= state.last_slot:
        return None
    try:
        feed = read_feed(settings.feed)
    except NewsletterError as error:
        reason = str(error)
        record_state(store, name, checked_at=now, last_error=reason)
        message = (
            f"{name}: {reason} (automations.{name}.feed); nothing sent, the feed's state is "
            "kept and the next run-due tries again"
        )
        say(message)
        return DigestResult(name, "failed", message)
    new = new_posts(feed, state, zone)
    if len(new) < settings.min_items:
        record_state(store, name, checked_at=now, last_error=None, last_slot=moment)
        message = (
            f"{name}: {len(new)} new post(s) since the last digest "
            f"(min_items: {settings.min_items}): no mail this time"
        )
        say(message)
        return DigestResult(name, "nothing", message)
    new = new[:MAX_ITEMS]
    date = moment.astimezone(zone).date()
    path = config.issues_dir / f"{date.isoformat()}-{name}-{date.isoformat()}.md"
    if not path.exists():  # else: a run that died after writing it; the same issue goes on
        write_digest(feed, new, path, date=date, topics=settings.topics)
    result = _send_or_hold(
        config, store, name, settings, path, now, say, count=len(new), stopping=stopping
    )
    if result.outcome == "interrupted":
        return result  # the moment is not recorded: the next run resumes the same issue
    seen = [item.key for item in new] + [key for key in state.seen if key]
    record_state(
        store, name, checked_at=now, last_error=None, last_slot=moment,
        seen=seen[:SEEN_LIMIT], last_digest=str(path.relative_to(config.root)),
    )  # fmt: skip
    return result


def new_posts(feed: Feed, state: DigestState, zone: ZoneInfo) -> list[FeedItem]:
    """Posts not mailed yet and published since the digest was set up, newest first."""
    since = state.started_at.astimezone(zone).date()
    seen = set(state.seen)
    return [
        item
        for item in feed.items
        if item.key not in seen and (item.published is None or item.published >= since)
    ]


def _send_or_hold(
    config: Config,
    store: Store,
    name: str,
    settings: AutomationSettings,
    path: Path,
    now: dt.datetime,
    say: Say,
    *,
    count: int,
    stopping: threading.Event | None,
) -> DigestResult:
    shown = path.relative_to(config.root)
    try:
        plan = plan_send(config, path)
    except NewsletterError as error:
        return _hold(config, store, name, path, now, str(error), say)
    if plan.has_errors:
        errors = [finding for finding in plan.findings if finding.level == "error"]
        reason = f"the pre-send checks found {len(errors)} error(s): {errors[0]}"
        return _hold(config, store, name, path, now, reason, say)
    if settings.approve:
        reason = (
            f"{count} new post(s), waiting for the editor (approve: true): read it, then "
            f"newsletter send {shown} (or --at WHEN)"
        )
        return _hold(config, store, name, path, now, reason, say, outcome="waiting")
    say(f"{name}: {count} new post(s): sending {shown} to {plan.to_send()} recipient(s)")
    try:
        summary = send_campaign(
            config,
            plan,
            notice=lambda message: say(f"{name}: {message}"),  # a wait, a retry
            stopping=stopping,
        )
    except SendError as error:
        return _hold(config, store, name, path, now, str(error), say)
    totals = summary.totals
    if signalled(summary.stopped):
        reason = why_stopped(summary, "recipients are still pending")
        message = f"{name}: {shown}: stopped ({reason}); the next run-due resumes it"
        say(message)
        return DigestResult(name, "interrupted", message)
    if summary.stopped or totals.get("pending") or totals.get("in_flight"):
        message = (
            f"{name}: {shown}: stopped ({summary.stopped or 'recipients are still pending'}); "
            f"newsletter send {shown} resumes it"
        )
        say(message)
        return DigestResult(name, "stopped", message)
    message = (
        f"{name}: {shown}: campaign {summary.campaign_id}: sent {totals['sent']}, failed "
        f"{totals['failed']}, unknown {totals['unknown']}"
    )
    say(message)
    return DigestResult(name, "sent", message)


def _hold(
    config: Config,
    store: Store,
    name: str,
    path: Path,
    now: dt.datetime,
    reason: str,
    say: Say,
    *,
    outcome: str = "held",
) -> DigestResult:
    """The digest in the schedule as ``held`` with the reason: the editor sends it."""
    slug = issue_slug(path)
    values: dict[str, Any] = {
        "slug": slug,
        "issue_path": str(path.resolve()),
        "send_at": now,
        "timezone": config.timezone,
        "provider": config.provider,
        "topics": [],
        "issue_hash": issue_hash(path),
        "state": "held",
        "note": f"digest {name}: {reason}",
        "created_at": now,
        "updated_at": now,
    }
    with campaign_rows.write_connection(store.engine) as connection, connection.begin():
        connection.execute(
            delete(schedules).where(schedules.c.slug == slug, schedules.c.state != "sent")
        )
        if connection.scalar(select(schedules.c.slug).where(schedules.c.slug == slug)) is None:
            connection.execute(insert(schedules).values(**values))
    message = f"{name}: wrote {path.relative_to(config.root)}, held: {reason}"
    say(message)
    return DigestResult(name, outcome, message)
