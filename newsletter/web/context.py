"""What every view needs, built once per app: the parts of the library it talks to."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from flask import current_app

from newsletter.config import Config
from newsletter.languages import Catalog
from newsletter.send.provider_events import EventProcessor
from newsletter.site.export import LiveSite
from newsletter.store import Store
from newsletter.tokens import Links, Signer
from newsletter.web.limits import RateLimiter
from newsletter.web.one_click import OneClickWriter
from newsletter.web.postman import Postman

EXTENSION = "newsletter"


@dataclass
class Services:
    config: Config
    catalog: Catalog  # the newsletter's language: every page and mail of the app
    signer: Signer
    links: Links
    store: Store
    limiter: RateLimiter
    postman: Postman
    site: LiveSite
    events: EventProcessor
    one_click: OneClickWriter
    webhook_key: EllipticCurvePublicKey | None  # None: the webhook refuses everything
    # The site's CSS, rendered once when the app is made, and the CSP source allowing it.
    stylesheet: str = ""
    style_source: str = "'none'"
    one_click_page: str | None = None  # see links._one_click_answer
    next_pending_sweep: float = 0.0  # see signup._expire_pending_signups (monotonic time)

    @property
    def consent_text(self) -> str:
        """The signup form's consent wording, as shown and as recorded with the signup."""
        return self.config.web.consent_text or self.catalog.gettext(
            "I agree to receive this newsletter by email. I can unsubscribe at any time."
        )

    @property
    def link_max_age(self) -> int:
        return self.config.web.link_max_age_days * 86400

    def close(self) -> None:
        """Finish what is queued (mail, unsubscribes), then let go of the database."""
        self.postman.close()
        self.one_click.close()
        self.store.close()


def services() -> Services:
    found: Services = current_app.extensions[EXTENSION]
    return found
