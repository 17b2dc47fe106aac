"""Every header of a copy comes from one builder (issue 22, item 4).

The preview shows the headers a reader's copy will have: the same builder as a send,
so the same List-Unsubscribe (the HTTPS link and the mailto with its signed token),
List-Id, List-Unsubscribe-Post and Feedback-ID.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from newsletter.config import Config
from newsletter.preview.workspace import Workspace
from newsletter.send.plan import plan_send
from newsletter.send.return_tokens import ReturnTokens
from newsletter.send.sending import send_campaign
from newsletter.store import Store
from newsletter.tokens import secret_or_development
from tests.send.conftest import SEED

FEEDBACK_ID = "stem-cells-in-breast-milk:research:breastfeeding-world:breastfeedingworld.example"
PER_MESSAGE = {"Date", "Message-ID", "MIME-Version", "Content-Type"}


def outbox_copies(config: Config) -> list[EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((config.outbox_dir / "new").iterdir())
    ]  # type: ignore[misc]


def headers_of(message: EmailMessage) -> list[tuple[str, str]]:
    return [(name, str(value)) for name, value in message.items() if name not in PER_MESSAGE]


def test_the_preview_shows_exactly_the_headers_of_the_readers_outbox_copy(
    project: Path,
    configure: Callable[..., Config],
    store: Store,
    subscribers: Callable[..., list[int]],
) -> None:
    config = configure(provider="outbox")
    [reader] = subscribers(1)
    send_campaign(config, plan_send(config, project / SEED))
    [copy] = outbox_copies(config)

    preview = Workspace(project / "newsletter.yaml").preview(project / SEED, "reader0@example.org")

    assert preview.preview is not None, preview.problem
    assert preview.preview.headers == headers_of(copy)
    shown = dict(preview.preview.headers)
    assert shown["Feedback-ID"] == FEEDBACK_ID
    # The mailto carries the reader's own signed token, as in the copy they get.
    subject = shown["List-Unsubscribe"].rpartition("?subject=")[2].rstrip(">")
    assert subject.startswith("unsubscribe%20")
    token = subject.removeprefix("unsubscribe%20")
    claim = ReturnTokens(secret_or_development()).read_mailto(
        f"unsubscribe {token}", lambda subscriber_id: store.get(subscriber_id).link_key
    )
    assert (claim.subscriber_id, claim.campaign_id) == (reader, 1)
