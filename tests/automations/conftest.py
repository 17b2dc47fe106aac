"""Fixtures of the automations suite: the example project with a sequence in it.

- ``configure`` / ``secret`` / ``store`` / ``subscribers``: as in the sending suite.
- ``on_both``: the project's database is a fresh SQLite file, then a fresh PostgreSQL
  schema (where PostgreSQL is available).
- ``write_step(name, after, ...)``: a step file in ``automations/welcome/``.
- ``welcome``: ``automations: {welcome: {path: automations/welcome}}`` configured,
  with a first step due right away.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from newsletter.config import Config
from tests.send.conftest import configure, secret, store, subscribers  # noqa: F401

STEP = """---
title: "{title}"
preheader: What to expect from us, and where to start reading.
date: 2026-12-01
after: {after}
{extra}---

Hello, and thank you: {title}. We write about breastfeeding research every week.

[Read the latest issue](https://example.org/archive/){{.button}}
"""

LATER = dt.timedelta(days=3, minutes=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def clock_at(moment: dt.datetime) -> Callable[[], dt.datetime]:
    return lambda: moment


@pytest.fixture
def write_step(project: Path) -> Callable[..., Path]:
    def write(
        name: str,
        after: str | None = "0 days",
        *,
        title: str | None = None,
        sequence: str = "welcome",
        extra: str = "",
    ) -> Path:
        folder = project / "automations" / sequence
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.md"
        text = STEP.format(title=title or name.title(), after=after, extra=extra)
        if after is None:
            text = text.replace("after: None\n", "")
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def welcome(
    configure: Callable[..., Config],  # noqa: F811 (the sending suite's fixture)
    write_step: Callable[..., Path],
    secret: object,  # noqa: F811
) -> Config:
    write_step("01-thanks", "0 days", title="Thanks for joining")
    return configure(automations={"welcome": {"path": "automations/welcome"}})
