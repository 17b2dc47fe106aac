"""``sendgrid``: the SendGrid v3 Mail Send API, through the official ``sendgrid`` library.

One request carries up to ``sendgrid.batch_size`` (at most 1,000) recipients: the
HTML and text once, with the personalisation markers as substitution tags, and one
personalization per recipient with its substitutions, its ``List-Unsubscribe``
header and ``custom_args`` (campaign and subscriber id, echoed by the Event Webhook).

Answers: 2xx accepted (``X-Message-Id`` recorded for every recipient); 429 waits as
long as ``X-RateLimit-Reset``/``Retry-After`` say; 5xx and failures to connect or to
send the request are retried with capped exponential backoff and jitter; 400 stops
the campaign with SendGrid's own message; 401/403 name the API key variable. Every
wait, the rate limit's included, happens in the campaign's log with the batch back in
``pending`` (:meth:`DeliveryLog.starting_many`, :meth:`DeliveryLog.put_back`): the batch
is handed over again, re-checked, right before each attempt.

A request that reached SendGrid whole but whose answer was lost (a timeout while
waiting, a connection reset or closed before the status line) may have been accepted:
it is never sent again automatically. Its recipients are ``unknown`` deliveries; the
Event Webhook (``processed``/``delivered``) or ``send --retry-unknown`` settles them.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
from collections.abc import Mapping
from html import escape
from operator import itemgetter
from typing import Any

import orjson
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient

from newsletter.config import Config, env_secret
from newsletter.errors import ConfigError, ProviderError, ProviderUnavailable
from newsletter.render.compile import marker
from newsletter.render.header_lines import header_value
from newsletter.send.providers import NO_LOG, BaseProvider, Batch, Delivery, DeliveryLog, Recipient
from newsletter.send.providers.retry import Backoff

MAX_RATE_LIMIT_WAIT = 900.0  # never sleep longer than this on one 429, whatever it says
# Any Content-Type but the bare "application/json" makes the library send a body we
# encoded ourselves instead of running json.dumps on it (see SendGridProvider._post).
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class SendGridProvider(BaseProvider):
    name = "sendgrid"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.settings = config.sendgrid
        self.batch_size = self.settings.batch_size
        self.backoff = Backoff.from_settings(config.sending, notify=self.notice)
        api_key = env_secret(self.settings.api_key_env)
        if not api_key:
            raise ConfigError(
                f"{self.settings.api_key_env} is not set: export it with a SendGrid API key "
                "that has the Mail Send permission (sendgrid.api_key_env names the variable)"
            )
        self.client = SendGridAPIClient(api_key=api_key, host=self.settings.api_host)
        # The library waits forever by default; a stuck connection must not stall a campaign.
        self.client.client.timeout = self.settings.timeout
        self.client.client.request_headers["Content-Type"] = JSON_CONTENT_TYPE

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]:
        # One request for the whole batch: handed over with ``log.starting_many`` right
        # before each attempt (the log waits first), its outcome returned as a whole.
        recipients = batch.recipients
        going = list(range(len(recipients)))
        # orjson: a 1,000-recipient body in a tenth of json.dumps' time (UTF-8, not
        # \u-escaped, hence the charset in the Content-Type). Encoded before any wait,
        # so the request follows the hand-over at once.
        body = _EncodedBody(orjson.dumps(self.payload(batch)))
        last_error = ""
        server_wait = 0.0  # what a 429 asked for
        for attempt in range(self.backoff.retries + 1):
            wait = 0.0
            if attempt:
                wait = self.backoff.before_retry(
                    attempt - 1, at_least=server_wait, reason=last_error
                )
            kept = log.starting_many(going, wait=wait)
            if kept != going:  # someone left while the batch waited
                going = kept
                if not going:
                    return _outcomes(len(recipients), going, _LEFT)
                chosen = Batch(batch.content, [recipients[i] for i in going])
                body = _EncodedBody(orjson.dumps(self.payload(chosen)))
            try:
                message_id = self._post(body)
            except _TryLater as later:
                last_error, server_wait = later.reason, later.wait
                log.put_back(going, f"not accepted, to retry: {later.reason}")
                continue
            except _AnswerLost as lost:
                return _outcomes(len(recipients), going, Delivery("unknown", error=str(lost)))
            return _outcomes(len(recipients), going, Delivery("sent", message_id=message_id))
        raise ProviderUnavailable(
            f"SendGrid did not accept the batch after {self.backoff.retries + 1} attempts "
            f"(last: {last_error})",
            maybe_delivered=False,
            deliveries=_outcomes(len(recipients), going, Delivery("deferred", error=last_error)),
        )

    # The request body: plain dicts (the library's helper objects cost five times more).

    def payload(self, batch: Batch) -> dict[str, Any]:
        content = batch.content
        values = [content.values_for(recipient.personalization) for recipient in batch.recipients]
        # Where no value in this batch changes when HTML-escaped (links, most names), the
        # HTML marker becomes the text marker: one substitution per field, not two.
        escaped = {
            name
            for name in content.html_fields
            if _needs_escaping("".join(map(itemgetter(name), values)))
        }
        html = content.html
        for name in content.html_fields - escaped:
            html = html.replace(marker("html", name), marker("text", name))
        plain = [
            (marker("text", n), n) for n in content.text_fields | (content.html_fields - escaped)
        ]
        html_only = [(marker("html", name), name) for name in escaped]
        body: dict[str, Any] = {
            "from": _address(content.sender_email, content.sender_name),
            "subject": content.subject,
            "content": [
                {"type": "text/plain", "value": content.text},
                {"type": "text/html", "value": html},
            ],
            "personalizations": [
                _personalization(recipient, value, plain, html_only)
                for recipient, value in zip(batch.recipients, values, strict=True)
            ],
            "tracking_settings": self._tracking(),
        }
        if content.reply_to:
            body["reply_to"] = {"email": content.reply_to}
        if content.headers:
            # SendGrid takes these as they are: they must be encoded already (List-Id
            # carries the newsletter's name); Subject and names it encodes itself.
            body["headers"] = {name: header_value(name, v) for name, v in content.headers.items()}
        if not content.transactional:
            if self.settings.asm_group_id is not None:
                body["asm"] = {"group_id": self.settings.asm_group_id}
            if self.settings.categories:
                body["categories"] = list(self.settings.categories)
        return body

    def _tracking(self) -> dict[str, Any]:
        # Subscription tracking stays off even when tracking is on: SendGrid would add its
        # own unsubscribe link and List-Unsubscribe header beside ours.
        tracking = self.settings.tracking
        return {
            "click_tracking": {"enable": tracking, "enable_text": False},
            "open_tracking": {"enable": tracking},
            "subscription_tracking": {"enable": False},
        }

    # The hand-off, with retries.

    def _post(self, body: _EncodedBody) -> str | None:
        """One attempt: SendGrid's message id; :class:`_TryLater` when it did not take the
        request but may later, :class:`_AnswerLost` when it may have taken it."""
        try:
            # What client.send(dict) does, minus its json.dumps: body is encoded JSON.
            response = self.client.client.mail.send.post(request_body=body)
            message_id: str | None = response.headers.get("X-Message-Id")
            return message_id
        except HTTPError as error:
            reason = f"{error.status_code} {_error_text(error.body)}"
            if error.status_code == 429:
                raise _TryLater(reason, _rate_limit_wait(error.headers)) from None
            if error.status_code < 500:
                raise self._refusal(error.status_code, error.body) from None
            raise _TryLater(reason) from None
        except urllib.error.URLError as error:
            # Raised before the request was complete: SendGrid cannot have acted on it.
            raise _TryLater(
                f"cannot connect to {self.settings.api_host} ({error.reason})"
            ) from None
        except (OSError, http.client.HTTPException) as error:
            # Raised while waiting for the answer: the whole request was sent, and
            # SendGrid may have accepted it. Sending it again could mail everyone
            # twice, so it is not retried.
            raise _AnswerLost(
                f"no answer from {self.settings.api_host} ({_describe(error)}) after "
                "the batch was sent: SendGrid may have accepted it, so it was not sent "
                "again; its events or --retry-unknown settle it"
            ) from None

    def _refusal(self, status: int, body: bytes | str | None) -> ProviderError:
        text = _error_text(body)
        if status in (401, 403):
            return ProviderError(
                f"SendGrid refused the API key ({status}: {text}); check "
                f"{self.settings.api_key_env} and that the key may send mail"
            )
        if status == 413:
            return ProviderError(
                f"SendGrid says the request is too large (413: {text}); lower "
                "sendgrid.batch_size in newsletter.yaml"
            )
        return ProviderError(f"SendGrid refused the request ({status}): {text}")


class _AnswerLost(Exception):
    """The request went out whole and its answer never came: it may have been accepted."""


class _TryLater(Exception):
    """SendGrid did not take the request (a 5xx, a 429, no connection): try again after
    ``wait`` seconds at least."""

    def __init__(self, reason: str, wait: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


_LEFT = Delivery("skipped", error="not sent: no longer subscribed")


def _outcomes(count: int, going: list[int], delivery: Delivery) -> list[Delivery]:
    """``delivery`` for the recipients that went, ``skipped`` for those who left."""
    if len(going) == count:
        return [delivery] * count
    outcomes = [_LEFT] * count
    for index in going:
        outcomes[index] = delivery
    return outcomes


class _Bytes(bytes):
    """Bytes that print as their size. The library formats every request body into a
    debug message, logging on or not: a thousand recipients' addresses and links that
    have no place in a log, and a 700 KB ``repr`` per request (a tenth of the sending
    time)."""

    def __str__(self) -> str:
        return f"<request body, {len(self):,} bytes>"

    __repr__ = __str__


class _EncodedBody(str):
    """A request body already encoded as UTF-8 JSON, for the library's ``post``: it
    calls ``request_body.encode("utf-8")`` (with our Content-Type), which here hands
    back the encoded bytes instead of encoding a 700 KB string again."""

    def __new__(cls, data: bytes) -> _EncodedBody:
        body = super().__new__(cls)
        body.data = _Bytes(data)
        return body

    data: _Bytes

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.data


def _address(email: str, name: str = "") -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def _to_name(name: str) -> str:
    """A recipient's name as SendGrid must get it. Its documented limitation: a comma or
    semicolon in ``to.name`` splits the name from the address and the message is dropped
    (202 all the same). In double quotes (a quoted-string, as its own libraries send it)
    the name reaches the To header whole. ``from.name`` it quotes itself."""
    if "," in name or ";" in name:
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return name


def _personalization(
    recipient: Recipient,
    values: dict[str, str],
    plain: list[tuple[str, str]],
    html_only: list[tuple[str, str]],
) -> dict[str, Any]:
    """One recipient's personalization; ``plain``/``html_only``: (substitution key, field)."""
    substitutions = {key: values[name] for key, name in plain}
    for key, name in html_only:
        substitutions[key] = escape(values[name], quote=True)
    personalization: dict[str, Any] = {"to": [_address(recipient.email, _to_name(recipient.name))]}
    if substitutions:
        personalization["substitutions"] = substitutions
    if recipient.headers:
        personalization["headers"] = _as_dict(recipient.headers)
    if recipient.tags:
        personalization["custom_args"] = _as_dict(recipient.tags)
    return personalization


def _as_dict(mapping: Mapping[str, str]) -> dict[str, str]:
    """orjson encodes dicts only; the recipient builder's mappings are dicts already, and
    the body is encoded before anyone could change them: no copy per recipient."""
    return mapping if type(mapping) is dict else dict(mapping)


def _needs_escaping(text: str) -> bool:
    return escape(text, quote=True) != text


def _error_text(body: bytes | str | None) -> str:
    """SendGrid's own error messages, joined: ``field: message; ...``."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        errors = json.loads(body or "")["errors"]
        parts = [
            f"{item['field']}: {item['message']}"
            if item.get("field") not in (None, "", "null")
            else str(item["message"])
            for item in errors
        ]
        return "; ".join(parts) or "(no message)"
    except (ValueError, KeyError, TypeError):
        return (body or "(no message)").strip()[:300]


def _rate_limit_wait(headers: Any) -> float:
    """Seconds until SendGrid lets us try again, from its 429 headers."""
    headers = headers or {}
    reset = headers.get("X-RateLimit-Reset")
    retry_after = headers.get("Retry-After")
    try:
        if reset is not None:
            return min(max(float(reset) - time.time(), 0.0), MAX_RATE_LIMIT_WAIT)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), MAX_RATE_LIMIT_WAIT)
    except ValueError:
        pass
    return 1.0


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__
