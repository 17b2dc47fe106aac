"""One POST to a provider's HTTP API, with retries, told apart by what may have happened.

The rule every HTTP provider (Postmark, Mailgun) follows, in one place:

- the request could not be sent whole (no connection, a reset while writing): the
  provider cannot have acted on it, so it is tried again after a backoff;
- 429 and 5xx: "try later", tried again (a 429 waits at least what ``Retry-After``
  asks, capped);
- the request went out whole and the answer never came (a timeout while waiting, a
  connection closed before the status line): the provider may have accepted it.
  :class:`AnswerLost` is raised and the request is never sent again on its own;
- any other answer is returned for the provider to read.

Every wait (a back-off, the run's rate limit) happens in the campaign's
:class:`~newsletter.send.providers.DeliveryLog` before the batch is handed over
(``log.starting_many``), and a request that was not taken goes back to ``pending``
(``log.put_back``) before the back-off: a kill or Ctrl-C during a wait leaves nothing
in flight that the provider never saw.

Each request opens its own connection (as SendGrid's library does): a kept-alive
connection that the server closed while idle fails the same way as a lost answer, and
that must not turn a batch ``unknown``.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from newsletter.errors import ProviderUnavailable
from newsletter.send.providers import NO_LOG, Delivery, DeliveryLog
from newsletter.send.providers.retry import Backoff

MAX_RATE_LIMIT_WAIT = 900.0  # never sleep longer than this on one 429, whatever it says
MAX_ANSWER_BYTES = 50 * 1024 * 1024  # a batch's answer is one small object per message


class NotSent(Exception):
    """The request never reached the provider whole: it cannot have acted on it."""


class AnswerLost(Exception):
    """The request went out whole and its answer never came: it may have been accepted.
    ``going``: the batch's recipients (indexes) the request carried."""

    going: Sequence[int] = ()


@dataclass(frozen=True)
class Posted:
    """What :meth:`ApiClient.post` did: the batch's recipients (indexes) the request
    carried, in order (the others left while it waited), and the answer; None when
    nobody was left to send to."""

    going: list[int]
    answer: Answer | None


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON; None if it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    def text(self, limit: int = 300) -> str:
        return self.body.decode("utf-8", "replace").strip()[:limit] or "(no message)"


def post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, method: str = "POST"
) -> Answer:
    """One POST (or ``method``) on a fresh connection. :class:`NotSent` or
    :class:`AnswerLost` if it failed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    try:
        try:
            connection.request(method, path or "/", body=body, headers=dict(headers))
        except (OSError, http.client.HTTPException) as error:
            raise NotSent(_describe(error)) from None
        try:
            response = connection.getresponse()
            data = response.read(MAX_ANSWER_BYTES)
        except (OSError, http.client.HTTPException) as error:
            raise AnswerLost(_describe(error)) from None
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        connection.close()


class ApiClient:
    """POSTs to one API, retried by the rule in the module doc."""

    def __init__(
        self,
        base_url: str,
        *,
        provider: str,
        headers: Mapping[str, str],
        timeout: float,
        backoff: Backoff,
        poster: Callable[..., Answer] = post,
    ) -> None:
        self.base_url = base_url
        self.provider = provider
        self.headers = dict(headers)
        self.timeout = timeout
        self.backoff = backoff
        self._post = poster

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc

    def post(
        self,
        path: str,
        body: Callable[[Sequence[int]], bytes],
        content_type: str,
        *,
        count: int,
        log: DeliveryLog = NO_LOG,
    ) -> Posted:
        """POST ``body(indexes)`` for a batch of ``count`` recipients, handed over through
        ``log`` right before each attempt: the first answer that is not "try later";
        :class:`AnswerLost` (with a message fit for the ledger) if the request may have
        been accepted unanswered; :class:`ProviderUnavailable` when the retries ran out."""
        headers = {**self.headers, "Content-Type": content_type}
        going = list(range(count))
        data = body(going)  # before any wait: the request follows the hand-over at once
        last_error = ""
        server_wait = 0.0
        for attempt in range(self.backoff.retries + 1):
            wait = 0.0
            if attempt:
                wait = self.backoff.before_retry(
                    attempt - 1, at_least=server_wait, reason=last_error
                )
            server_wait = 0.0
            kept = log.starting_many(going, wait=wait)
            if kept != going:  # someone left while the batch waited
                going = kept
                if not going:
                    return Posted([], None)
                data = body(going)
            try:
                answer = self._post(self.base_url + path, data, headers, timeout=self.timeout)
            except NotSent as error:
                last_error = f"cannot connect to {self.host} ({error})"
                log.put_back(going, f"not sent, to retry: {last_error}")
                continue
            except AnswerLost as error:
                lost = AnswerLost(
                    f"no answer from {self.host} ({error}) after the batch was sent: "
                    f"{self.provider} may have accepted it, so it was not sent again; its "
                    "events or --retry-unknown settle it"
                )
                lost.going = going
                raise lost from None
            if answer.status == 429 or answer.status >= 500:
                last_error = f"{answer.status} {answer.text(200)}"
                if answer.status == 429:
                    server_wait = retry_after(answer.headers)
                log.put_back(going, f"not accepted, to retry: {last_error}")
                continue
            return Posted(going, answer)
        raise ProviderUnavailable(
            f"{self.provider} did not accept the batch after {self.backoff.retries + 1} "
            f"attempts (last: {last_error})",
            maybe_delivered=False,
            deliveries=spread(count, going, Delivery("deferred", error=last_error)),
        )


LEFT = Delivery("skipped", error="not sent: no longer subscribed")


def spread(count: int, going: Sequence[int], delivery: Delivery | list[Delivery]) -> list[Delivery]:
    """One delivery per recipient of a batch of ``count``: ``delivery`` (or the list, one
    per index of ``going``) for those the request carried, ``skipped`` for who left."""
    each = delivery if isinstance(delivery, list) else [delivery] * len(going)
    if len(going) == count:
        return list(each)
    outcomes = [LEFT] * count
    for index, outcome in zip(going, each, strict=True):
        outcomes[index] = outcome
    return outcomes


def retry_after(headers: Mapping[str, str]) -> float:
    """Seconds a 429 asks us to wait (``Retry-After`` in seconds), capped; 1 if it says none."""
    try:
        return min(max(float(headers.get("retry-after", "")), 0.0), MAX_RATE_LIMIT_WAIT)
    except ValueError:
        return 1.0


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return "timed out"
    return str(error) or type(error).__name__
