"""Test sends (``newsletter send --test``): the planned issue to a few addresses with a
sample reader's links, subject prefixed [TEST], recorded in no campaign."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from newsletter.config import Config
from newsletter.errors import ProviderError, ProviderUnavailable, SendError
from newsletter.models import Personalization
from newsletter.render.header_lines import safe_header
from newsletter.render.mail import list_unsubscribe
from newsletter.send.copies import campaign_content
from newsletter.send.plan import SendPlan, refuse_on_errors
from newsletter.send.providers import Batch, Delivery, Recipient, get_provider
from newsletter.tokens import sample_personalization

TEST_SAMPLE_HEADER = "X-Newsletter-Test"
TEST_SAMPLE_NOTE = (
    "proof: the greeting uses no subscriber's name; the unsubscribe and preference links "
    "are samples that change nothing"
)


def send_tests(
    config: Config, plan: SendPlan, addresses: Sequence[str], *, subject: str | None = None
) -> list[Delivery]:
    """The issue to ``addresses`` with a sample recipient's links, subject prefixed
    ``[TEST]``; recorded in no campaign (and needing no signing key). ``subject``: one
    of a subject test's subjects instead of the issue's."""
    refuse_on_errors(plan)
    sample = sample_personalization(config, plan.slug)
    compiled = plan.compiled if subject is None else replace(plan.compiled, subject=subject)
    content = campaign_content(config, compiled, topics=plan.topics, test=True)
    recipients = [
        Recipient(
            # Addressed to the proof's own address, with no made-up name: the greeting
            # shows its fallback ("Hi there,"), and a header says what is a sample.
            Personalization(
                email=safe_header("To", address),
                unsubscribe_url=sample.unsubscribe_url,
                preferences_url=sample.preferences_url,
                view_url=sample.view_url,
            ),
            headers={
                "List-Unsubscribe": list_unsubscribe(config, sample.unsubscribe_url),
                TEST_SAMPLE_HEADER: TEST_SAMPLE_NOTE,
            },
        )
        for address in addresses
    ]
    with get_provider(config, plan.provider) as provider:
        try:
            return provider.send_batch(Batch(content, recipients))
        except (ProviderError, ProviderUnavailable) as error:
            raise SendError(_why_the_test_stopped(error, len(addresses))) from error


def _why_the_test_stopped(error: ProviderError | ProviderUnavailable, count: int) -> str:
    """The provider's reason, and what it means for a test send (there is no campaign)."""
    deliveries = error.deliveries or []
    sent = sum(delivery.status == "sent" for delivery in deliveries)
    what = "the test message was" if count == 1 else f"the {count} test messages were"
    if sent:
        what = f"{count - sent} of the {count} test messages were"
    return (
        f"{str(error).rstrip('.')}; {what} not sent (test sends are recorded nowhere): "
        "send the test again once that is fixed"
    )
