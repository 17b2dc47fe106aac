"""The URLs in a message (:class:`Links`), and the made-up recipient of builds, checks
and previews."""

from __future__ import annotations

from newsletter.config import Config
from newsletter.models import Personalization
from newsletter.tokens.signer import Signer
from newsletter.tokens.signing_key import secret_or_development


class Links:
    """The URLs in a message, built the one way the web app's routes expect."""

    def __init__(self, config: Config, signer: Signer) -> None:
        self.site_url = config.site_url
        self.signer = signer

    def unsubscribe(self, subscriber_id: int, link_key: str, campaign_id: int | None) -> str:
        token = self.signer.unsubscribe_token(subscriber_id, campaign_id, link_key)
        return f"{self.site_url}/u/{token}"

    def preferences(self, subscriber_id: int, link_key: str) -> str:
        return f"{self.site_url}/p/{self.signer.preferences_token(subscriber_id, link_key)}"

    def message_links(
        self, subscriber_id: int, link_key: str, campaign_id: int | None
    ) -> tuple[str, str]:
        """``(unsubscribe, preferences)``: the two links of one message, signed at once."""
        unsubscribe, preferences = self.signer.message_tokens(subscriber_id, campaign_id, link_key)
        return f"{self.site_url}/u/{unsubscribe}", f"{self.site_url}/p/{preferences}"

    def confirm(self, subscriber_id: int, link_key: str) -> str:
        return f"{self.site_url}/confirm/{self.signer.confirm_token(subscriber_id, link_key)}"

    def manage(self, subscriber_id: int, link_key: str) -> str:
        # Same route as preferences: the web app accepts either kind of token there.
        return f"{self.site_url}/p/{self.signer.manage_token(subscriber_id, link_key)}"

    def view(self, slug: str) -> str:
        # The folder of the web version, as a static host serves it too.
        return f"{self.site_url}/archive/{slug}/"


SAMPLE_EMAIL = "reader@example.org"
SAMPLE_NAME = "Sam Reader"
SAMPLE_LINK_KEY = "sample"


def sample_personalization(config: Config, slug: str) -> Personalization:
    """A made-up recipient with real-looking links, for builds, checks and previews."""
    links = Links(config, Signer(secret_or_development()))
    return Personalization(
        email=SAMPLE_EMAIL,
        name=SAMPLE_NAME,
        unsubscribe_url=links.unsubscribe(0, SAMPLE_LINK_KEY, None),
        preferences_url=links.preferences(0, SAMPLE_LINK_KEY),
        view_url=links.view(slug),
    )
