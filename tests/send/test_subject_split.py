"""The draw of a subject test's sample: the sample and the rest partition the audience,
the variants split it evenly, and the seed repeats it (a property test), and the same
holds in the ledger when a campaign starts, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import AbSettings
from newsletter.send import campaign_rows
from newsletter.send.subject_test import assign, draw, find_test, sample_size
from newsletter.store import Store, open_store_url
from tests.send.subject_tests_helpers import variants_in_ledger


# No deadline and no too-slow health check: on a two-core machine under load 10 or more
# a draw of a few hundred ids can take a second, which says nothing about the draw.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ids=st.sets(st.integers(min_value=1, max_value=2**40), max_size=400),
    percent=st.floats(min_value=0.01, max_value=99.99),
    variants=st.integers(min_value=2, max_value=4),
    seed=st.text(min_size=1, max_size=16),
)
def test_the_sample_and_the_rest_partition_the_audience(
    ids: set[int], percent: float, variants: int, seed: str
) -> None:
    sample = draw(sorted(ids, reverse=True), percent=percent, variants=variants, seed=seed)
    rest = ids - sample.keys()

    assert sample.keys() <= ids  # nobody from outside the audience
    assert sample.keys() | rest == ids and not sample.keys() & rest  # each reader once
    assert len(sample) == sample_size(len(ids), percent, variants)
    sizes = Counter(sample.values())
    assert set(sizes) <= set(range(1, variants + 1))
    if len(sample) >= variants:  # every subject is tried, the split even to one reader
        assert len(sizes) == variants and max(sizes.values()) - min(sizes.values()) <= 1
    # The seed repeats the draw, whatever order the audience was read in.
    assert draw(sorted(ids), percent=percent, variants=variants, seed=seed) == sample


def test_the_seed_decides_the_draw() -> None:
    ids = list(range(1, 1001))
    first = draw(ids, percent=20, variants=2, seed="a")
    assert first == draw(ids, percent=20, variants=2, seed="a")
    assert first != draw(ids, percent=20, variants=2, seed="b")
    assert len(first) == 200


def test_the_sample_is_a_percentage_of_the_audience_with_one_reader_per_variant_at_least() -> None:
    assert sample_size(1000, 20, 2) == 200
    assert sample_size(10, 1, 3) == 3  # every subject gets someone
    assert sample_size(2, 20, 3) == 2  # never more than there are
    assert sample_size(0, 20, 2) == 0


def test_starting_a_campaign_records_the_draw_in_the_ledger(database_url: str) -> None:
    store: Store = open_store_url(database_url, ["research"])
    try:
        readers = [store.add(f"r{n}@example.org", topics=["research"]).id for n in range(101)]
        now = dt.datetime(2030, 1, 1, 9, 0, tzinfo=dt.UTC)
        settings_ = AbSettings.model_validate({"sample": "30%", "wait": "2h"})

        campaign = campaign_rows.start_campaign(
            store,
            slug="tested",
            issue_path="issues/tested.md",
            subject="A",
            topics=["research"],
            provider="outbox",
            after_snapshot=lambda connection, campaign_id: assign(
                connection, campaign_id, variants=("A", "B", "C"), settings=settings_, now=now
            ),
        )

        variants = variants_in_ledger(store, campaign.id)
        test = find_test(store, campaign.id)
        assert test is not None
        assert sorted(variants) == readers  # the whole audience, each once
        sizes = Counter(variants.values())
        assert sizes == {1: 10, 2: 10, 3: 10, None: 71}
        assert (test.sample_size, test.rest_at, test.variants) == (
            30, now + dt.timedelta(hours=2), ("A", "B", "C")
        )  # fmt: skip
        # The recorded seed repeats it.
        again = draw(readers, percent=30, variants=3, seed=test.seed)
        assert again == {s: v for s, v in variants.items() if v is not None}
    finally:
        store.close()


def test_a_campaign_without_a_test_has_no_variants(database_url: str) -> None:
    store = open_store_url(database_url, ["research"])
    try:
        reader = store.add("r@example.org", topics=["research"]).id
        campaign = campaign_rows.start_campaign(
            store, slug="plain", issue_path="x.md", subject="S", topics=[], provider="outbox"
        )
        assert variants_in_ledger(store, campaign.id) == {reader: None}
        assert find_test(store, campaign.id) is None
    finally:
        store.close()
