"""SES v2 ``SendBulkEmail``: up to 50 readers a request through a stored template.

The campaign's content becomes one SES template (``CreateEmailTemplate``, on first
use, deleted when the provider closes), made by the rule Postmark's follows
(:mod:`~newsletter.send.providers.stored_templates`): each marker a ``{{{ h_field }}}``
or ``{{{ t_field }}}`` variable, the HTML values escaped here (SES does not escape:
"SES doesn't escape HTML content when rendering the HTML template", its developer
guide says, and triple braces insert a value as it is in Handlebars as well). Each
entry is one reader: their address, their values (``ReplacementTemplateData``),
their own headers (``ReplacementHeaders``: ``List-Unsubscribe`` with their one-click
link) and their campaign and subscriber ids (``ReplacementTags``, echoed in SES's
events); the headers every copy shares (``List-Unsubscribe-Post``, ``List-Id``) go
once, in ``DefaultContent.Template.Headers``.

A batch goes in requests of ``entries`` readers (50, fewer when the account's send
rate is lower: SES counts each destination against it), ``ses.connections`` at once,
each handed over through the campaign's log right before it leaves (the log waits for
the pace first, counting readers). Each entry's result settles its reader:
``SUCCESS`` is sent (the ``MessageId`` kept for SES's events); a refusal of that
message (``MESSAGE_REJECTED``, ``INVALID_PARAMETER``, ``FAILED``) fails that reader
only; ``ACCOUNT_THROTTLED`` and ``TRANSIENT_FAILURE`` put them back and try them again
after the back-off; anything about the account or its configuration stops the
campaign with one line saying what to fix, everyone not yet accepted still pending.
A request refused as a whole follows :mod:`~newsletter.send.providers.ses_errors`
as a ``SendEmail`` would (refused for an address it cannot take, its readers go again
one a request, so that one fails alone); a request whose answer was lost leaves its readers
``unknown``, never sent again on their own.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any

from newsletter.config import SesSettings
from newsletter.errors import ProviderError, ProviderUnavailable
from newsletter.send.providers import Batch, Content, Delivery, DeliveryLog
from newsletter.send.providers.http_api import AnswerLost, NotSent
from newsletter.send.providers.per_message import NOT_SUBSCRIBED
from newsletter.send.providers.retry import Backoff
from newsletter.send.providers.ses_errors import (
    CREDENTIAL_CODES,
    NO_CREDENTIALS,
    READER_STATUSES,
    RETRY_STATUSES,
    about_recipient,
    entry_refusal,
    error_code,
    error_message,
    is_rate_limit,
    refusal,
)
from newsletter.send.providers.ses_http import SignedPoster, bulk_request
from newsletter.send.providers.stored_templates import (
    Template,
    new_alias,
    templatable,
    template_body,
    template_for,
)

with contextlib.suppress(ImportError):  # ses.py says what to install
    import botocore.exceptions

MAX_ENTRIES = 50
TEMPLATE_ATTEMPTS = 3  # CreateEmailTemplate: one a second an account


class SesBulk:
    def __init__(
        self,
        clients: Callable[[], tuple[Any, SignedPoster, Any]],
        settings: SesSettings,
        *,
        region: str,
        backoff: Backoff,
        workers: Executor,
        notice: Callable[[str], None],
    ) -> None:
        self._clients = clients  # boto3's client, for the templates; the requests' poster
        self.settings = settings
        self.region = region
        self.backoff = backoff
        self.workers = workers
        self.notice = notice
        self.entries = MAX_ENTRIES  # readers a request; lowered to the account's rate
        # Content -> its template (None: raw messages), made on first use.
        self.templates: dict[int, tuple[Content, Template | None]] = {}
        self._stop: ProviderError | ProviderUnavailable | None = None
        self._stop_lock = threading.Lock()

    @property
    def client(self) -> Any:
        return self._clients()[0]

    @property
    def poster(self) -> SignedPoster:
        return self._clients()[1]

    # The template.

    def template(self, content: Content) -> Template | None:
        """``content``'s SES template, made on first use; None: raw messages instead
        (``ses.templates`` off, confirmation mail, content Handlebars would misread, or
        SES did not take the template: the campaign goes all the same, one a request)."""
        known = self.templates.get(id(content))
        if known is not None and known[0] is content:
            return known[1]
        template = None
        if self.settings.templates and templatable(content):
            template = self._create(content)
        self.templates[id(content)] = (content, template)
        return template

    def _create(self, content: Content) -> Template | None:
        name = new_alias(content)
        body = template_body(content, name)
        parts = {"Subject": body["Subject"], "Html": body["HtmlBody"], "Text": body["TextBody"]}
        for attempt in range(TEMPLATE_ATTEMPTS):
            try:
                self.client.create_email_template(TemplateName=name, TemplateContent=parts)
                return template_for(content, name)
            except botocore.exceptions.NoCredentialsError:
                raise ProviderError(NO_CREDENTIALS) from None
            except botocore.exceptions.ClientError as error:
                code, text = error_code(error), error_message(error)
                if code in CREDENTIAL_CODES:
                    raise self._refusal(code, text) from None
                why = f"{code}: {text}"
                if is_rate_limit(code, text) and attempt + 1 < TEMPLATE_ATTEMPTS:
                    # SES makes at most one template a second (a subject test's variants
                    # ask at once); nobody is handed over yet, so the wait holds no one.
                    time.sleep(1.0)
                    continue
            except botocore.exceptions.BotoCoreError as error:
                why = str(error)
            break
        self.notice(
            f"SES did not take the campaign's template ({why}); sending one message a "
            "request instead (slower, same mail)"
        )
        return None

    def close(self) -> None:
        """Delete the templates made here (an account holds at most 20,000)."""
        for _, template in self.templates.values():
            if template is None:
                continue
            try:
                self.client.delete_email_template(TemplateName=template.alias)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                self.notice(
                    f"could not delete the SES template {template.alias}: delete it with "
                    f"'aws sesv2 delete-email-template --template-name {template.alias}'"
                )
        self.templates.clear()

    # The batch.

    def send(self, batch: Batch, template: Template, log: DeliveryLog) -> list[Delivery]:
        self._stop = None
        count = len(batch.recipients)
        outcomes: list[Delivery | None] = [None] * count
        chunks = [
            list(range(start, min(start + self.entries, count)))
            for start in range(0, count, self.entries)
        ]
        for _ in self.workers.map(
            lambda chunk: self._request(batch, template, chunk, log, outcomes), chunks
        ):
            pass
        deliveries = [
            outcome or Delivery("deferred", error=f"not attempted: {self._stop}")
            for outcome in outcomes
        ]
        if self._stop is not None:
            self._stop.deliveries = deliveries
            raise self._stop
        return deliveries

    def _request(
        self,
        batch: Batch,
        template: Template,
        going: list[int],
        log: DeliveryLog,
        outcomes: list[Delivery | None],
    ) -> None:
        """One request of ``going`` (the batch's indexes), handed over through ``log``
        right before each attempt; their outcomes written into ``outcomes``."""
        last_error = ""
        for attempt in range(self.backoff.retries + 1):
            if self._stop is not None:
                return
            wait = self.backoff.before_retry(attempt - 1, reason=last_error) if attempt else 0.0
            kept = log.starting_many(going, wait=wait)
            for index in set(going).difference(kept):
                outcomes[index] = NOT_SUBSCRIBED
            going = kept
            if not going:
                return
            try:
                answer = self.poster.send_bulk_email(
                    bulk_request(batch, template, going, self.settings.configuration_set)
                )
            except NotSent as error:
                last_error = f"cannot connect to SES ({error})"
                log.put_back(going, f"not sent, to retry: {last_error}")
                continue
            except AnswerLost as error:
                why = (
                    f"no answer from SES ({error}) after the request was sent: SES may have "
                    "accepted it, so it was not sent again; its events or --retry-unknown "
                    "settle it"
                )
                _fill(outcomes, going, Delivery("unknown", error=why))
                return
            except ProviderError as error:  # no credentials
                self._halt(error)
                _fill(outcomes, going, Delivery("deferred", error=str(error)))
                return
            if answer.code:
                if is_rate_limit(answer.code, answer.message) or answer.status >= 500:
                    last_error = f"{answer.code}: {answer.message}"
                    log.put_back(going, f"not accepted, to retry: {last_error}")
                    continue
                if answer.code == "BadRequestException" and about_recipient(answer.message):
                    self._one_by_one(batch, template, going, log, outcomes, answer.message)
                    return
                refused = self._refusal(
                    answer.code, answer.message, sender=batch.content.sender_email
                )
                self._halt(refused)
                _fill(outcomes, going, Delivery("deferred", error=str(refused)))
                return
            going = self._settle(batch, going, answer.body, outcomes)
            if not going:
                return
            last_error = "SES asked to try again later (ACCOUNT_THROTTLED, TRANSIENT_FAILURE)"
            log.put_back(going, f"not accepted, to retry: {last_error}")
        self._halt(
            ProviderUnavailable(
                f"SES did not accept the batch after {self.backoff.retries + 1} attempts "
                f"(last: {last_error})",
                maybe_delivered=False,
            )
        )
        _fill(outcomes, going, Delivery("deferred", error=last_error))

    def _one_by_one(
        self,
        batch: Batch,
        template: Template,
        going: list[int],
        log: DeliveryLog,
        outcomes: list[Delivery | None],
        why: str,
    ) -> None:
        """SES refused the whole request for an address it cannot take: that reader
        fails alone, so each of the request's readers goes again in a request of its own."""
        if len(going) == 1:
            outcomes[going[0]] = Delivery("failed", error=f"SES refused the address ({why})")
            return
        log.put_back(going, f"not accepted, to send one by one: {why}")
        for index in going:
            self._request(batch, template, [index], log, outcomes)

    def _settle(
        self, batch: Batch, going: list[int], answer: Any, outcomes: list[Delivery | None]
    ) -> list[int]:
        """Each entry's result into ``outcomes``; the indexes to try again."""
        results = answer.get("BulkEmailEntryResults") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(going):
            why = "SES's answer to the request does not say what became of each message"
            _fill(outcomes, going, Delivery("unknown", error=why))
            return []
        again = []
        for index, result in zip(going, results, strict=True):
            status = str(result.get("Status") or "")
            text = str(result.get("Error") or "(no message)")[:400]
            if status == "SUCCESS":
                outcomes[index] = Delivery("sent", message_id=result.get("MessageId"))
            elif status in RETRY_STATUSES:
                again.append(index)
            elif status in READER_STATUSES and "not verified" not in text.lower():
                outcomes[index] = Delivery("failed", error=f"SES {status}: {text}")
            else:
                self._halt(
                    entry_refusal(
                        status,
                        text,
                        region=self.region,
                        configuration_set=self.settings.configuration_set,
                        sender=batch.content.sender_email,
                    )
                )
                outcomes[index] = Delivery("deferred", error=str(self._stop))
        return again

    # Stopping.

    def _halt(self, error: ProviderError | ProviderUnavailable) -> None:
        """Stop the batch: requests not yet started stay ``pending``."""
        with self._stop_lock:
            if self._stop is None:
                self._stop = error

    def _refusal(self, code: str, text: str, *, sender: str = "") -> ProviderError:
        return refusal(
            code,
            text,
            region=self.region,
            configuration_set=self.settings.configuration_set,
            sender=sender,
        )


def _fill(outcomes: list[Delivery | None], indexes: Sequence[int], delivery: Delivery) -> None:
    for index in indexes:
        outcomes[index] = delivery
