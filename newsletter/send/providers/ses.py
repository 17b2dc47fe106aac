"""``ses``: Amazon SES through its v2 API (boto3).

A campaign goes with ``SendBulkEmail``, up to 50 readers a request through a template
made of its content (:mod:`~newsletter.send.providers.ses_bulk`). Where a template
cannot carry the message (``ses.templates: false``, confirmation mail, content with
``{{`` or ``}}``, SES not taking the template) each message is personalised and
written here (as the SMTP provider does) and handed over with ``SendEmail`` and raw
content: every reader's own ``List-Unsubscribe`` travels either way. ``ses.connections``
requests run at once; raw messages are each reported to the campaign's
:class:`~newsletter.send.providers.DeliveryLog` before and after (a crash leaves at
most one message per connection ``unknown``). The campaign and subscriber ids go as
message tags, which SES echoes in the events its configuration set
(``ses.configuration_set``) publishes to SNS, read back by ``POST /webhooks/ses``.

Region and credentials come from the usual AWS environment (``AWS_REGION``,
``AWS_ACCESS_KEY_ID``..., a profile, a role; ``AWS_ENDPOINT_URL`` for a local stand-in);
``ses.region`` overrides the region. The pace is the account's maximum send rate, read
when sending starts, unless ``sending.rate`` is lower.

botocore's own retries are off: it would resend a request whose answer timed out, which
may mail someone twice. Throttling and 5xx are retried here with backoff; a request
whose answer was lost (a read timeout, a connection closed before the answer) is
``unknown`` and never resent on its own. An account or configuration problem (no or
bad credentials, an unverified sender or domain, the sandbox, a paused account, a
missing configuration set, the daily quota) stops the campaign with one line saying
what to fix; a refusal of one address fails that recipient only.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from newsletter.config import Config
from newsletter.errors import ConfigError, ProviderError, ProviderUnavailable
from newsletter.send.providers import (
    NO_LOG,
    Batch,
    Content,
    Delivery,
    DeliveryLog,
    Recipient,
    local_message,
)
from newsletter.send.providers.per_message import PerMessageProvider
from newsletter.send.providers.ses_bulk import MAX_ENTRIES, SesBulk
from newsletter.send.providers.ses_errors import (
    NO_CREDENTIALS,
    about_recipient,
    error_code,
    error_message,
    is_rate_limit,
    refusal,
)
from newsletter.send.providers.ses_http import SignedPoster

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    import botocore.loaders
    import botocore.session
except ImportError:  # pragma: no cover - the test extra installs it
    boto3 = None


@functools.cache
def _shared_loader(data_path: str | None) -> Any:
    """botocore's loader of service models (from ``data_path``, AWS_DATA_PATH), whose
    cache every SES provider shares."""
    return botocore.loaders.create_loader(data_path)


class SesProvider(PerMessageProvider[dict[str, Any]]):
    name = "ses"

    def __init__(self, config: Config) -> None:
        super().__init__(config, connections=config.ses.connections)
        if boto3 is None:
            raise ConfigError("provider ses needs boto3: pip install 'newsletter[ses]' (or boto3)")
        self.settings = config.ses
        region = (
            self.settings.region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
        )
        if not region:
            raise ConfigError(
                "no AWS region for SES: set ses.region in newsletter.yaml or export AWS_REGION"
            )
        self.region: str = region
        self.bulk = SesBulk(
            lambda: self._clients,
            self.settings,
            region=self.region,
            backoff=self.backoff,
            workers=self._workers,
            notice=self.notice,
        )

    @functools.cached_property
    def _clients(self) -> tuple[Any, SignedPoster, Any]:
        """botocore's ``sesv2`` client, the poster of bulk requests and the session, made
        on first use: the provider the plan makes to check the settings sends nothing,
        and two clients cost some 0.15 s each."""
        client_config = botocore.config.Config(
            region_name=self.region,
            retries={"total_max_attempts": 1},
            connect_timeout=self.settings.timeout,
            read_timeout=self.settings.timeout,
            max_pool_connections=self.settings.connections,
        )
        session = botocore.session.get_session()
        # The service models, read once a process: parsing them is a tenth of a second of
        # CPU for every provider made (each campaign, each confirmation mail).
        session.register_component(
            "data_loader", _shared_loader(session.get_config_variable("data_path"))
        )
        client = session.create_client("sesv2", config=client_config)
        poster = SignedPoster(
            client.meta.endpoint_url,
            session.get_credentials(),
            region=self.region,
            timeout=self.settings.timeout,
        )
        return client, poster, (session, client_config)

    @property
    def client(self) -> Any:
        return self._clients[0]

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]:
        template = self.bulk.template(batch.content)
        if template is None:
            return super().send_batch(batch, log)
        return self.bulk.send(batch, template, log)

    def close(self) -> None:
        self.bulk.close()
        super().close()

    # The account's pace, read once, before the first message.

    def max_rate(self) -> float | None:
        """The account's send rate (``MaxSendRate``), read once before the first message;
        the campaign paces itself no faster."""
        if not self.settings.rate_from_account:
            return None
        try:
            # SES v1's client, for GetSendQuota only: made here, once.
            session, client_config = self._clients[2]
            quota = session.create_client("ses", config=client_config).get_send_quota()
        except botocore.exceptions.ClientError as error:
            raise self._refusal(error_code(error), error_message(error)) from None
        except botocore.exceptions.NoCredentialsError:
            raise ProviderError(NO_CREDENTIALS) from None
        except botocore.exceptions.BotoCoreError as error:
            raise ProviderUnavailable(
                f"cannot reach SES in {self.region} ({error})", maybe_delivered=False
            ) from None
        account_rate = float(quota.get("MaxSendRate") or 0)
        if account_rate <= 0:
            return None
        # SES counts each reader of a bulk request against the rate: no more a request
        # than it lets the account send in a second.
        self.bulk.entries = max(1, min(MAX_ENTRIES, int(account_rate)))
        return account_rate

    # One message, on a worker thread (per_message.PerMessageProvider hands it over).

    def prepare(self, content: Content, recipient: Recipient) -> dict[str, Any]:
        _, message = local_message(content, recipient)
        request: dict[str, Any] = {
            "FromEmailAddress": content.sender_email,
            "Destination": {"ToAddresses": [recipient.email]},
            "Content": {"Raw": {"Data": message.replace(b"\n", b"\r\n")}},
        }
        if recipient.tags:
            request["EmailTags"] = [{"Name": k, "Value": v} for k, v in recipient.tags.items()]
        if self.settings.configuration_set:
            request["ConfigurationSetName"] = self.settings.configuration_set
        return request

    def try_once(self, message: dict[str, Any]) -> Delivery | str:
        try:
            answer = self.client.send_email(**message)
            return Delivery("sent", message_id=answer.get("MessageId"))
        except botocore.exceptions.ClientError as error:
            code, text = error_code(error), error_message(error)
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if is_rate_limit(code, text) or status >= 500:
                return f"{code}: {text}"
            if code == "BadRequestException" and about_recipient(text):
                return Delivery("failed", error=f"SES refused the address ({code}: {text})")
            return self.halt(self._refusal(code, text, sender=message["FromEmailAddress"]))
        except botocore.exceptions.NoCredentialsError:
            return self.halt(ProviderError(NO_CREDENTIALS))
        except (
            botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectTimeoutError,
        ) as error:
            return f"cannot connect to SES ({error})"  # never sent: try again
        except (
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.HTTPClientError,
        ) as error:
            return Delivery(
                "unknown",
                error=f"no answer from SES ({error}) after the message was sent: SES may "
                "have accepted it, so it was not sent again; its events or "
                "--retry-unknown settle it",
            )

    def out_of_retries(self, last_error: str) -> Delivery:
        return self.halt(
            ProviderUnavailable(
                f"SES did not accept the message after {self.backoff.retries + 1} attempts "
                f"(last: {last_error})",
                maybe_delivered=False,
            )
        )

    def _refusal(self, code: str, text: str, *, sender: str = "") -> ProviderError:
        return refusal(
            code,
            text,
            region=self.region,
            configuration_set=self.settings.configuration_set,
            sender=sender,
        )
