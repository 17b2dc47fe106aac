"""The seed issue, rendered, compared with checked-in golden files.

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
    html, text = Personalizer(compile_issue(issue, config)).render(
        sample_personalization(config, issue.slug)
    )
    return {
        "stem-cells-in-breast-milk.html": normalise_html(html),
        "stem-cells-in-breast-milk.txt": text,
    }


@pytest.mark.parametrize(
    "name", ["stem-cells-in-breast-milk.html", "stem-cells-in-breast-milk.txt"]
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
