"""What ``newsletter send`` shows before it asks: the plan, its audience, a subject test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from newsletter.safe_text import visible
from newsletter.send.campaign_rows import Audience
from newsletter.send.plan import SendPlan
from newsletter.send.subject_plan import SubjectPlan
from newsletter.send.subject_test import letter, why

Say = Callable[[str], None]


def show_plan(
    plan: SendPlan,
    say: Say,
    *,
    test_addresses: tuple[str, ...],
    retry_unknown: bool,
    retry_failed: bool = False,
) -> None:
    issue = plan.compiled.issue
    say(f"Issue:      {issue.title} ({issue.path})")
    if plan.subject_test is None:
        say(f"Subject:    {plan.subject}")
    say(f"Provider:   {plan.provider}")
    if plan.switched_from:
        say(f"Switching:  from {plan.switched_from}, which this campaign used so far")
    if test_addresses:
        say(f"Test to:    {', '.join(test_addresses)} (subject prefixed [TEST], not recorded)")
    else:
        if plan.segment is not None:
            fixed = ""
            if plan.campaign is not None:
                fixed = f": its recipients were chosen when campaign {plan.campaign.id} started"
            say(f"Segment:    {visible(plan.segment.label)}{fixed}")
        for line in _audience_lines(plan.audience, plan.segment is not None and not plan.campaign):
            say(line)
        if plan.campaign is not None and plan.counts is not None:
            started = f"{plan.campaign.created_at:%Y-%m-%d %H:%M} UTC"
            counts = counts_line(plan.counts)
            say(f"Resuming:   campaign {plan.campaign.id} of {started}: {counts}")
        if retry_failed and plan.counts is not None:
            say(f"Re-queue:   {plan.counts['failed']} failed recipient(s) (--retry-failed)")
        if plan.subject_test is not None:
            for line in _subject_test_lines(plan.subject_test):
                say(line)
        say(f"To send:    {plan.to_send(retry_unknown=retry_unknown, retry_failed=retry_failed)}")
    for warning in plan.warnings:
        say(f"Warning:    {warning}")
    for finding in plan.findings:
        say(f"Check:      {finding}")
    if not plan.findings:
        say("Checks:     ok")
    if plan.development_key:
        say(
            "Note:       links are signed with the development key (NEWSLETTER_SECRET_KEY "
            "is not set): fine for the outbox, refused for real mail"
        )


def _subject_test_lines(test: SubjectPlan) -> list[str]:
    """The subjects, the sample per subject and when the rest gets the winner."""
    lines = [
        f"Variant {letter(number)}:  {visible(subject)}"
        for number, subject in enumerate(test.variants, 1)
    ]
    split = ", ".join(f"{letter(n)} {size}" for n, size in enumerate(test.sample, 1))
    drawn = "drawn" if test.test is not None else "drawn at random when it starts"
    lines.append(
        f"Sample:     {sum(test.sample)} reader(s) ({test.sample_percent}%), {drawn}: {split}"
    )
    when = f"{test.rest_at:%Y-%m-%d %H:%M} UTC"
    decided = test.test.winner if test.test is not None else None
    if test.test is not None and decided is not None:
        rest = f"get {why(test.test)}"
    elif test.settings is not None:
        wait = _duration(test.settings.wait)
        rest = f"get the better subject by {test.metric} at {when} (after {wait})"
    else:
        rest = f"get the better subject by {test.metric} at {when}"
    by_hand = "" if decided is not None else "; --pick decides by hand"
    lines.append(f"Rest:       {test.rest} reader(s) {rest}{by_hand}")
    return lines


def _duration(wait: dt.timedelta) -> str:
    minutes = int(wait.total_seconds()) // 60
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def _audience_lines(audience: Audience, segmented: bool = False) -> list[str]:
    """Who gets the issue and who does not, each number said once with what it counts;
    ``segmented``: the audience was narrowed by a segment (shown on the line above)."""
    suppressed = "unsubscribed, bounced or complained"
    outside = audience.outside_segment
    if not audience.by_topic:
        if segmented:
            lines = [
                f"Audience:   {audience.recipients} of {audience.recipients + outside} active "
                "subscriber(s): those in the segment"
            ]
        else:
            lines = [
                f"Audience:   {audience.recipients} active subscriber(s): everyone (no topics)"
            ]
        left_out = [f"{outside} active subscriber(s) outside the segment"] if outside else []
        if audience.suppressed:
            left_out.append(f"{audience.suppressed} {suppressed}")
        if left_out:
            lines.append("Left out:   " + "; ".join(left_out))
        return lines
    active = audience.recipients + outside + audience.without_topics
    if len(audience.by_topic) == 1:
        [topic] = audience.by_topic
        chosen, without, them = f"the topic {topic}", f"without the topic {topic}", "it"
    else:
        names = ", ".join(f"{name} ({count})" for name, count in audience.by_topic.items())
        chosen, them = f"any of the topics {names}", "any of them"
        without = f"with none of the topics {', '.join(audience.by_topic)}"
    within = " in the segment" if segmented else ""
    lines = [
        f"Audience:   {audience.recipients} of {active} active subscriber(s): those with "
        f"{chosen}{within}"
    ]
    left_out = []
    if outside:
        left_out.append(f"{outside} active subscriber(s) with {them} outside the segment")
    if audience.without_topics:
        left_out.append(f"{audience.without_topics} active subscriber(s) {without}")
    if audience.suppressed:
        left_out.append(f"{audience.suppressed} with {them} who {suppressed}")
    if left_out:
        lines.append("Left out:   " + "; ".join(left_out))
    return lines


def counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {state.replace('_', ' ')}" for state, count in counts.items())
