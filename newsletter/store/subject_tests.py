"""Migration 14's table and column: subject tests (docs/subject-tests.md).

- ``ledger.variant`` (on :data:`newsletter.store.schema.ledger`): for a reader in a
  subject test's sample, which subject they were given (1 = the first variant, ``A``);
  NULL for everyone else, and for the rest of a test, who get the winner
  (``subject_tests.winner``).
- ``subject_tests``: one row per campaign that tests subjects, written in the
  transaction that starts the campaign and never changed after, except for the decision:
  the subjects as they were rendered (a resumed or later run sends these, whatever the
  file says now), the settings, the seed of the sample's draw and its size, when the
  rest goes, and once decided: the winner, how (``measured``, ``tie``, ``too little
  data``, ``picked``), the figures it was decided on and when.

:func:`count_by_variant` is the one count of a test's ledger rows by subject and state,
for the send's plan, its phases, the decision and the report.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    func,
    select,
)

from newsletter.store.schema import Id, UtcDateTime, ledger, metadata

subject_tests = Table(
    "subject_tests",
    metadata,
    Column(
        "campaign_id",
        Id,
        ForeignKey("campaigns.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("variants", JSON, nullable=False),  # the subjects, in order: A, B, ...
    Column("metric", String(16), nullable=False),  # clicks or opens
    Column("sample_percent", Text, nullable=False),  # as given, e.g. "20"
    Column("min_events", Integer, nullable=False),
    Column("seed", String(32), nullable=False),  # the draw's seed, to repeat it
    Column("sample_size", Integer, nullable=False),
    Column("rest_at", UtcDateTime, nullable=False),  # when run-due decides and sends the rest
    Column("winner", Integer),  # 1-based; NULL until decided
    Column("decided_by", String(16)),  # measured, tie, too little data, picked
    Column("figures", JSON),  # per variant at the decision: [[readers, handed over], ...]
    Column("decided_at", UtcDateTime),
)


@dataclass(frozen=True)
class VariantStates:
    """A subject test's ledger rows counted by (variant, state); variant None is the rest."""

    counts: Mapping[tuple[int | None, str], int]

    def readers(self, variant: int | None, state: str | None = None) -> int:
        """The rows of ``variant`` (None: the rest), in ``state`` or in any."""
        return sum(
            count
            for (of, in_state), count in self.counts.items()
            if of == variant and state in (None, in_state)
        )

    @property
    def pending_sample(self) -> int:
        """The sample's readers still to hand over, whatever their subject."""
        return sum(
            count
            for (of, state), count in self.counts.items()
            if of is not None and state == "pending"
        )


def count_by_variant(connection: Connection, campaign_id: int) -> VariantStates:
    rows = connection.execute(
        select(ledger.c.variant, ledger.c.state, func.count())
        .where(ledger.c.campaign_id == campaign_id)
        .group_by(ledger.c.variant, ledger.c.state)
    )
    return VariantStates({(variant, state): count for variant, state, count in rows})
