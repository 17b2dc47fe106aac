"""The seed issue, rendered (in English, German and Arabic), compared with checked-in
golden files.

An intended change to the theme or the seed issue: run `make golden` and review the diff.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

from newsletter.config import Config
from newsletter.render.compile import compile_issue
from newsletter.render.issues import read_issue
from newsletter.render.personalize import Personalizer
from newsletter.tokens import sample_personalization
from tests.conftest import SEED_ISSUE

GOLDEN = Path(__file__).parent / "golden"


def normalise_html(html: str) -> str:
    # One tag per line, so a diff points at the element that changed.
    return re.sub(r">\s*<", ">\n<", html).strip() + "\n"


@pytest.fixture
def seed_parts(project: Path, config: Config) -> dict[str, str]:
    issue = read_issue(project / SEED_ISSUE, topics=config.topic_ids)
    parts = {}
    # The theme's words in German, and in Arabic, right to left (the issue's own text
    # stays as written): docs/languages.md.
    for language, suffix in (("en", ""), ("de", ".de"), ("ar", ".ar")):
        speaking = config.model_copy(update={"language": language})
        html, text = Personalizer(compile_issue(issue, speaking)).render(
            sample_personalization(speaking, issue.slug)
        )
        parts[f"stem-cells-in-breast-milk{suffix}.html"] = normalise_html(html)
        parts[f"stem-cells-in-breast-milk{suffix}.txt"] = text
    return parts


@pytest.mark.parametrize(
    "name",
    [
        f"stem-cells-in-breast-milk{suffix}.{kind}"
        for suffix in ("", ".de", ".ar")
        for kind in ("html", "txt")
    ],
)
def test_seed_issue_matches_golden_file(seed_parts: dict[str, str], name: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("NEWSLETTER_UPDATE_GOLDEN"):
        golden.write_text(seed_parts[name], encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    if seed_parts[name] != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                seed_parts[name].splitlines(keepends=True),
                fromfile=f"golden/{name}",
                tofile="rendered",
                n=2,
            )
        )
        pytest.fail(f"rendered output differs from golden/{name} (refresh: make golden)\n{diff}")
