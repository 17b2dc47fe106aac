"""NEWSLETTER_LIBRARY_PATHS=1, the switch back from the speed shortcuts over library
internals (tokens/fast_dumps.py over itsdangerous, render/markdown_links.py over
markdown-it-py) to the libraries' own code: it reaches both, and what comes out is the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from itsdangerous import URLSafeSerializer

from newsletter.render.issue_body import markdown_parser
from newsletter.render.markdown_links import normalize_link
from newsletter.tokens import Signer, TrackingSigner
from tests.conftest import ROOT, SEED_ISSUE

SEED = ROOT / SEED_ISSUE

# Run in a fresh process, as the CLI and the web app read the variable: which paths are
# in use, the seed issue as read, and tokens signed for a few readers.
REPORT = f"""
import json
from pathlib import Path
from newsletter.render import issue_body, issues
from newsletter.render.markdown_links import normalize_link
from newsletter.tokens import Signer, TrackingSigner
from tests.render.test_markdown_links import TRICKY_LINKS

signer, tracking = Signer("a-secret"), TrackingSigner("a-secret")
ids = [0, 7, 123456, 918273645, 2**63 - 1]  # no run itsdangerous would compress
print(json.dumps({{
    "fast_markdown": issue_body._PARSER.normalizeLink is normalize_link,
    "fast_tokens": signer._fast["unsubscribe"].max_plain_length > 0,
    "issue": repr(issues.read_issue(Path({str(SEED)!r}), topics=["research"])),
    "links": [[t.as_dict() for t in issue_body._PARSER.parse(s)] for s in TRICKY_LINKS],
    "tokens": [signer.message_tokens(i, 3, "k3yK3y_k3y-") for i in ids]
    + [tracking.reader_key(3, i) for i in ids],
}}))
"""


def _report(library_paths: str | None) -> dict[str, object]:
    env = {key: value for key, value in os.environ.items() if key != "NEWSLETTER_LIBRARY_PATHS"}
    if library_paths is not None:
        env["NEWSLETTER_LIBRARY_PATHS"] = library_paths
    done = subprocess.run(
        [sys.executable, "-c", REPORT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


@pytest.mark.slow
def test_the_switch_turns_both_shortcuts_off_and_changes_no_output() -> None:
    fast, library, zero = _report(None), _report("1"), _report("0")

    assert (fast["fast_markdown"], fast["fast_tokens"]) == (True, True)
    assert (library["fast_markdown"], library["fast_tokens"]) == (False, False)
    assert zero == fast
    for key in ("issue", "links", "tokens"):
        assert library[key] == fast[key], key


def test_the_library_token_path_is_itsdangerous_byte_for_byte() -> None:
    library, fast = Signer("a-secret", fast=False), Signer("a-secret", fast=True)
    theirs = URLSafeSerializer("a-secret", salt="newsletter.unsubscribe")
    reader = URLSafeSerializer("a-secret", salt="newsletter.click-reader")

    # 1111111111: a repeated run, which itsdangerous compresses and the fast path not.
    for subscriber_id in (1, 42, 987654321, 1_111_111_111):
        token = library.unsubscribe_token(subscriber_id, 5, "abcdefghijk")
        assert token == theirs.dumps([subscriber_id, 5, "abcdefghijk"])
        assert library.read_unsubscribe_token(token) == fast.read_unsubscribe_token(token)
        assert TrackingSigner("a-secret", fast=False).reader_key(5, subscriber_id) == (
            reader.dumps([5, subscriber_id])
        )
    assert library.unsubscribe_token(42, 5, "abcdefghijk") == fast.unsubscribe_token(
        42, 5, "abcdefghijk"
    )


def test_the_library_markdown_path_is_markdown_it_itself() -> None:
    library, fast = markdown_parser(fast=False), markdown_parser(fast=True)
    source = "[a link](https://example.org/page?x=1) and <https://example.org/b>"

    assert library.normalizeLink is not normalize_link
    assert fast.normalizeLink is normalize_link
    assert library.render(source) == fast.render(source)
