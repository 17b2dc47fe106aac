"""The outbox as a mail client (or a test) watching the folder sees it."""

from __future__ import annotations

import mailbox
import os
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.send.providers.outbox import OutboxProvider


def test_the_outbox_appears_whole_or_not_at_all(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that opens the outbox while the first send creates it never finds the
    folder without its cur/ and new/ (mutt and Python's mailbox both fail on that)."""
    outbox = Path(config.outbox_dir)
    seen: list[set[str]] = []
    real_mkdir = os.mkdir

    def watched_mkdir(path: str | Path, mode: int = 0o777) -> None:
        real_mkdir(path, mode)
        if outbox.exists():  # what a reader polling the folder would find right now
            seen.append({entry.name for entry in outbox.iterdir()})

    monkeypatch.setattr(mailbox.os, "mkdir", watched_mkdir)
    OutboxProvider(config)._open()
    monkeypatch.undo()

    assert seen == [] or all({"cur", "new", "tmp"} <= names for names in seen)
    assert {"cur", "new", "tmp"} <= {entry.name for entry in outbox.iterdir()}
    assert not [p for p in outbox.parent.iterdir() if p.name.startswith(f".{outbox.name}")]


def test_an_existing_outbox_keeps_its_messages(config: Config) -> None:
    outbox = Path(config.outbox_dir)
    mailbox.Maildir(outbox, create=True).add(b"Subject: kept\n\nhello\n")

    OutboxProvider(config)._open()

    assert len(mailbox.Maildir(outbox, create=False)) == 1
