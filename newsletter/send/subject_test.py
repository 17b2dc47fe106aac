"""Subject tests: a sample of the audience gets each subject, the rest get the winner.

One campaign, two phases, so the ledger's one row per campaign and reader keeps
anyone from getting two subjects. When the campaign starts, in the same transaction as
its snapshot (:func:`assign`), a seeded draw (:func:`draw`) picks the sample among the
snapshot and splits it evenly over the subjects: each reader's subject is their
ledger row's ``variant`` (1 = A), the rest keep NULL; the subjects, the seed and when
the rest goes are one ``subject_tests`` row (:mod:`newsletter.store.subject_tests`).
Sending then goes phase by phase (:mod:`newsletter.send.sending`): the sample, one
subject at a time (``variant == n``), and once the wait is over (or a pick), the rest
(``variant IS NULL``) with the winner's subject.

The winner (:func:`decide`) is the variant whose readers clicked (or opened) most often:
unique readers with the event among its sample, over its sample handed over. A tie,
or fewer readers with the event in the whole sample than ``min_events``, falls back
to the first variant; the decision, how it was made and the figures it was made on
are kept (:func:`record_decision`, once: the first decision stands).
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    Table,
    and_,
    func,
    insert,
    select,
    update,
)

from newsletter.config import AbSettings
from newsletter.errors import SendError
from newsletter.send.campaign_rows import engine_of, write_connection
from newsletter.store import Store
from newsletter.store.engagement import readers_who
from newsletter.store.schema import ledger
from newsletter.store.subject_tests import VariantStates, subject_tests
from newsletter.store.table_dump_load import load_pages

LETTERS = "ABCD"

# How a winner was decided (subject_tests.decided_by).
MEASURED, TIE, TOO_LITTLE, PICKED = "measured", "tie", "too little data", "picked"


def letter(variant: int) -> str:
    """``A`` for variant 1, ``B`` for 2, ..."""
    return LETTERS[variant - 1]


def variant_of(value: str, count: int) -> int:
    """The variant a ``--pick`` names (``A``..``D``, any case); SendError otherwise."""
    choices = LETTERS[:count]
    if len(value) != 1 or value.upper() not in choices:
        raise SendError(
            f"--pick {value}: name one of this issue's subject variants, "
            f"{', '.join(choices)} (in the order of subject_variants:)"
        )
    return LETTERS.index(value.upper()) + 1


def refuse_another_pick(test: SubjectTest, pick: str) -> int:
    """The variant ``--pick`` names, unless the test was decided for another one (the
    rest gets that one: a decision stands)."""
    chosen = variant_of(pick, len(test.variants))
    if test.winner is not None and test.winner != chosen:
        raise SendError(
            f"--pick {pick}: this subject test was decided on "
            f"{test.decided_at:%Y-%m-%d %H:%M} UTC: {why(test)}; the rest gets that one "
            "(send again without --pick)"
        )
    return chosen


def sample_size(audience: int, percent: float, variants: int) -> int:
    """How many of ``audience`` readers get a variant: ``percent`` of them, rounded,
    at least one per variant (and never more than there are)."""
    return min(audience, max(variants, round(audience * percent / 100)))


def draw(ids: Sequence[int], *, percent: float, variants: int, seed: str) -> dict[int, int]:
    """The sample: ``subscriber id -> variant`` (1-based) for the readers drawn, the
    same for the same ids and seed; everyone else is the rest. Sizes per variant
    differ by one at most."""
    chosen = random.Random(seed).sample(sorted(ids), sample_size(len(ids), percent, variants))
    # sample() returns them in random order: dealing them out in turn splits at random.
    return {subscriber_id: index % variants + 1 for index, subscriber_id in enumerate(chosen)}


def new_seed() -> str:
    return secrets.token_hex(8)


def assign(
    connection: Connection,
    campaign_id: int,
    *,
    variants: Sequence[str],
    settings: AbSettings,
    now: dt.datetime,
    seed: str | None = None,
) -> None:
    """Draw the sample of a campaign just snapshotted and record it, in the caller's
    transaction (the one that starts the campaign: a campaign never exists without its
    sample)."""
    seed = seed or new_seed()
    ids = connection.scalars(
        select(ledger.c.subscriber_id).where(ledger.c.campaign_id == campaign_id)
    ).all()
    sample = draw(ids, percent=settings.sample, variants=len(variants), seed=seed)
    _write_variants(connection, campaign_id, sample)
    connection.execute(
        insert(subject_tests).values(
            campaign_id=campaign_id,
            variants=list(variants),
            metric=settings.metric,
            sample_percent=f"{settings.sample:g}",
            min_events=settings.min_events,
            seed=seed,
            sample_size=len(sample),
            rest_at=now + settings.wait,
        )
    )


# The drawn sample on its way into the ledger: one temporary table, joined once.
_drawn = Table(
    "subject_test_draw",
    MetaData(),
    Column("subscriber_id", BigInteger, primary_key=True, autoincrement=False),
    Column("variant", Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


def _write_variants(connection: Connection, campaign_id: int, sample: dict[int, int]) -> None:
    """Each sample reader's variant into their ledger row: the sample into a temporary
    table (the store's bulk load: COPY on PostgreSQL), then one ``UPDATE ... FROM``
    join. An ``UPDATE ... IN`` of 500 readers at a time took 79 s on PostgreSQL for a
    20% sample of a million readers, an INSERT per reader into the table 6 s more; see
    docs/performance.md."""
    # Created and dropped in the caller's transaction: an error rolls both back.
    _drawn.create(connection)
    load_pages(connection, _drawn.name, ["subscriber_id", "variant"], [sorted(sample.items())])
    connection.execute(
        update(ledger)
        .where(
            ledger.c.campaign_id == campaign_id,
            ledger.c.subscriber_id == _drawn.c.subscriber_id,
        )
        .values(variant=_drawn.c.variant)
    )
    _drawn.drop(connection)


@dataclass(frozen=True)
class SubjectTest:
    """A campaign's subject test as recorded when it started, and its decision."""

    campaign_id: int
    variants: tuple[str, ...]
    metric: str
    sample_percent: str
    min_events: int
    seed: str
    sample_size: int
    rest_at: dt.datetime
    winner: int | None
    decided_by: str | None
    figures: tuple[tuple[int, int], ...] | None  # (readers, handed over) per variant
    decided_at: dt.datetime | None


def find_test(store: Store | Any, campaign_id: int) -> SubjectTest | None:
    with engine_of(store).connect() as connection:
        row = connection.execute(
            select(subject_tests).where(subject_tests.c.campaign_id == campaign_id)
        ).one_or_none()
    if row is None:
        return None
    return SubjectTest(
        campaign_id=row.campaign_id,
        variants=tuple(row.variants),
        metric=row.metric,
        sample_percent=row.sample_percent,
        min_events=row.min_events,
        seed=row.seed,
        sample_size=row.sample_size,
        rest_at=row.rest_at,
        winner=row.winner,
        decided_by=row.decided_by,
        figures=None if row.figures is None else tuple(tuple(pair) for pair in row.figures),
        decided_at=row.decided_at,
    )


def measure(
    store: Store | Any, test: SubjectTest, states: VariantStates
) -> tuple[tuple[int, int], ...]:
    """Per variant: (readers with the metric's event, sample readers handed over, from
    ``states``: the campaign's rows by variant, which every caller has counted)."""
    sample = and_(ledger.c.campaign_id == test.campaign_id, ledger.c.variant.is_not(None))
    event = "open" if test.metric == "opens" else "click"
    who = readers_who(event, campaign_ids=[test.campaign_id])
    with engine_of(store).connect() as connection:
        readers: dict[int, int] = {
            variant: count
            for variant, count in connection.execute(
                select(ledger.c.variant, func.count())
                .where(sample, ledger.c.subscriber_id.in_(who))
                .group_by(ledger.c.variant)
            )
        }
    return tuple(
        (readers.get(variant, 0), states.readers(variant, "sent"))
        for variant in range(1, len(test.variants) + 1)
    )


def rate(readers: int, handed_over: int) -> Fraction:
    return Fraction(readers, handed_over) if handed_over else Fraction(0)


def decide(figures: Sequence[tuple[int, int]], min_events: int) -> tuple[int, str]:
    """(winner, how): the best rate wins; a tie at the top, or fewer readers with the
    event than ``min_events`` in the whole sample, falls back to the first variant."""
    if sum(readers for readers, _ in figures) < min_events:
        return 1, TOO_LITTLE
    rates = [rate(readers, handed) for readers, handed in figures]
    best = max(rates)
    if rates.count(best) > 1:
        return 1, TIE
    return rates.index(best) + 1, MEASURED


def record_decision(
    store: Store | Any,
    test: SubjectTest,
    *,
    winner: int,
    decided_by: str,
    figures: Sequence[tuple[int, int]],
    now: dt.datetime,
) -> SubjectTest:
    """Keep the decision unless one was kept first (another run, a pick): the test as
    it stands after."""
    with write_connection(engine_of(store)) as connection, connection.begin():
        connection.execute(
            update(subject_tests)
            .where(
                subject_tests.c.campaign_id == test.campaign_id,
                subject_tests.c.winner.is_(None),
            )
            .values(
                winner=winner,
                decided_by=decided_by,
                figures=[list(pair) for pair in figures],
                decided_at=now,
            )
        )
    decided = find_test(store, test.campaign_id)
    assert decided is not None
    return decided


def why(test: SubjectTest) -> str:
    """The decision in words, for the send's output and the report."""
    if test.winner is None:
        return f"not decided yet: the rest goes at {test.rest_at:%Y-%m-%d %H:%M} UTC"
    chosen = letter(test.winner)
    figures = test.figures or ()
    shown = ", ".join(
        f"{letter(number)} {_percent(readers, handed)} ({readers} of {handed})"
        for number, (readers, handed) in enumerate(figures, 1)
    )
    verb = "clicked" if test.metric == "clicks" else "opened"
    if test.decided_by == PICKED:
        return f"{chosen}, picked by hand (--pick {chosen})"
    if test.decided_by == TIE:
        return f"A, the first variant: a tie ({shown} {verb})"
    if test.decided_by == TOO_LITTLE:
        total = sum(readers for readers, _ in figures)
        return (
            f"A, the first variant: too little data ({total} reader(s) {verb} in the "
            f"sample, fewer than min_events {test.min_events})"
        )
    return f"{chosen}, the higher {test.metric[:-1]} rate ({shown} {verb})"


def _percent(readers: int, handed: int) -> str:
    return f"{float(rate(readers, handed)) * 100:.1f}%"
