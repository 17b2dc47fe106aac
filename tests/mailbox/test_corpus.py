"""flufl.bounce's own corpus of 117 real bounces and non-bounces (issue 22): each read as
if it had come back to a copy's signed return path, against the corpus's labels
(data/flufl_bounce/labels.csv, NOTICE says where they come from)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from newsletter.send.mailbox.classify import classify
from newsletter.send.return_tokens import ReturnTokens
from tests.mailbox.conftest import BOUNCE_ADDRESS, LINK_KEY, link_keys

CORPUS = Path(__file__).parent / "data" / "flufl_bounce"
KIND_OF_LABEL = {"hard": "hard_bounce", "soft": "soft_bounce", "policy": "blocked"}


def read_corpus(tokens: ReturnTokens) -> dict[str, tuple[str, str]]:
    """File -> (label, kind read), each delivered to the VERP address of subscriber 42."""
    verp = tokens.envelope_sender(BOUNCE_ADDRESS, 42, LINK_KEY, 7)
    with (CORPUS / "labels.csv").open(encoding="utf-8") as labels:
        rows = list(csv.DictReader(labels))
    found = {}
    for row in rows:
        # What the MTA adds on delivering a bounce to the return path.
        raw = f"Delivered-To: {verp}\n".encode() + (CORPUS / row["file"]).read_bytes()
        found[row["file"]] = (row["label"], classify(raw, tokens, link_keys).kind)
    return found


def test_labelled_bounces_are_read_as_labelled_and_no_policy_block_suppresses(
    tokens: ReturnTokens,
) -> None:
    found = read_corpus(tokens)
    labelled = {name: pair for name, pair in found.items() if pair[0] in ("hard", "soft")}
    as_labelled = [name for name, (label, kind) in labelled.items() if kind == KIND_OF_LABEL[label]]
    recognised = [name for name, (_, kind) in labelled.items() if kind.endswith("_bounce")]

    assert (len(found), len(labelled)) == (117, 111)
    assert len(recognised) == 111
    assert len(as_labelled) >= 110
    # The one difference: Status 4.4.7 (gave up retrying, "Maximum-Time-Expired") is
    # counted soft here, toward bounces.soft_bounce_limit; flufl.bounce calls it permanent.
    assert sorted(set(labelled) - set(as_labelled)) == ["dsn_02.txt"]
    # Gmail's "likely unsolicited mail": blocked, never a bounce.
    assert found["simple_42.txt"] == ("policy", "blocked")
    # Nothing else (notices, auto-replies, unrecognisable mail) suppresses anyone.
    others = Counter(kind for label, kind in found.values() if label == "none")
    assert set(others) <= {"auto_reply", "other"}, others
