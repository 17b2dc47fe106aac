"""The plain-text part reads as well as the HTML: every URL present, every line wrapped,
headings and emphasis visible."""

from __future__ import annotations

from pathlib import Path

from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from tests.render.test_render import issue_file

LONG = (
    "Breast milk is food, and it may be medicine too: what researchers found when they "
    "looked for stem cells in it, and why it matters to mothers."
)


def text_part(project: Path, config: Config, body: str, front_matter: str = "") -> str:
    path = issue_file(project, body, "title: Test issue\n" + front_matter)
    issue = read_issue(path, topics=config.topic_ids)
    recipient = Personalization(
        email="ann@example.org",
        name="Ann Lee",
        unsubscribe_url="https://news.example/u/" + "T" * 90,
        preferences_url="https://news.example/p/P1",
        view_url="https://news.example/archive/test",
    )
    return Personalizer(compile_issue(issue, config)).render(recipient)[1]


def test_a_button_keeps_its_url(project: Path, config: Config) -> None:
    text = text_part(
        project, config, "[Download the plan (PDF)](https://example.org/plan.pdf){.button}\n"
    )
    assert "Download the plan (PDF): https://example.org/plan.pdf" in text


def test_every_line_is_wrapped_except_urls(project: Path, config: Config) -> None:
    text = text_part(
        project,
        config,
        f"{LONG}\n\n## {LONG}\n\n[{LONG}](https://example.org/a){{.button}}\n",
        front_matter=f'preheader: "{LONG}"\n',
    )
    for line in text.splitlines():
        if len(line) > 72:  # only where a URL, which must not be broken, ends the line
            assert line.split()[-1].startswith("https://"), line
            assert len(line.rsplit(" ", 1)[0]) <= 72, line
    assert "Breast milk is food, and it may be medicine too: what researchers found\n" in text
    assert (
        "You are receiving this because ann@example.org subscribed to\nBreastfeeding World" in text
    )


def test_heading_levels_can_be_told_apart(project: Path, config: Config) -> None:
    text = text_part(project, config, "## Section\n\nText.\n\n### Part\n\nMore.\n")
    assert "Section\n-------\n" in text
    assert "### Part\n" in text
    assert "Test issue\n==========\n" in text


def test_emphasis_is_kept(project: Path, config: Config) -> None:
    text = text_part(project, config, "Known as *markers*, and **stem cells** too.\n")
    assert "Known as *markers*, and **stem cells** too." in text
