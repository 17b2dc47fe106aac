"""What the ``newsletter subscribers`` commands share: the ``--topic`` option and the
store they open (:mod:`newsletter.cli.subscriber_commands`,
:mod:`newsletter.cli.subscriber_listing`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from newsletter.cli import State
from newsletter.store import Store, open_store

TOPIC = click.option(
    "--topic", "topics", multiple=True, metavar="TOPIC", help="A topic id (repeatable)."
)


@contextmanager
def subscriber_store(state: State) -> Iterator[Store]:
    store = open_store(state.config)
    try:
        yield store
    finally:
        store.close()
