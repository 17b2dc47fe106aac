"""What the providers that hand over one message a request share (SMTP, SES).

A batch's messages go out on a pool of worker threads, one a connection. Each message
is handed over through the campaign's :class:`~newsletter.send.providers.DeliveryLog`
right before it leaves (the log waits for the pace first) and reported right after, so
a crash leaves at most one message a connection ``unknown``. An answer that means "try
later" puts the message back to ``pending`` before the back-off and hands it over again
after it. An answer that every message would get (the account, the login, the sender)
halts the batch: what is not yet started stays ``pending`` and ``send_batch`` raises it.

A subclass says how to build one message (:meth:`PerMessageProvider.prepare`), how to
send it once (:meth:`PerMessageProvider.try_once`) and what running out of retries
means (:meth:`PerMessageProvider.out_of_retries`).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

from newsletter.config import Config
from newsletter.errors import ProviderError, ProviderUnavailable
from newsletter.send.providers import (
    NO_LOG,
    BaseProvider,
    Batch,
    Content,
    Delivery,
    DeliveryLog,
    Recipient,
)
from newsletter.send.providers.retry import Backoff

NOT_SUBSCRIBED = Delivery("skipped", error="not sent: no longer subscribed")

Message = TypeVar("Message")


class PerMessageProvider(BaseProvider, Generic[Message]):
    def __init__(self, config: Config, *, connections: int) -> None:
        super().__init__(config)
        self.batch_size = config.sending.batch_size
        self.backoff = Backoff.from_settings(config.sending, notify=self.notice)
        self._workers = ThreadPoolExecutor(connections, thread_name_prefix=self.name)
        self._stop: ProviderError | ProviderUnavailable | None = None
        self._stop_lock = threading.Lock()

    # What a provider says.

    def prepare(self, content: Content, recipient: Recipient) -> Message:
        """The message to hand over, built once, after the wait for the pace (its Date
        is when it leaves); a retry sends the same."""
        raise NotImplementedError

    def try_once(self, message: Message) -> Delivery | str:
        """One attempt: the Delivery when the answer settles the message (or halts the
        batch, through :meth:`halt`), else the temporary answer to try again after."""
        raise NotImplementedError

    def out_of_retries(self, last_error: str) -> Delivery:
        """The outcome once every retry got a temporary answer, ``last_error`` the last."""
        raise NotImplementedError

    # The batch.

    def send_batch(self, batch: Batch, log: DeliveryLog = NO_LOG) -> list[Delivery]:
        self._stop = None
        deliveries = list(
            self._workers.map(
                lambda index: self._deliver(batch.content, batch.recipients[index], index, log),
                range(len(batch.recipients)),
            )
        )
        if self._stop is not None:
            self._stop.deliveries = deliveries
            raise self._stop
        return deliveries

    def close(self) -> None:
        self._workers.shutdown(wait=True)

    def halt(self, error: ProviderError | ProviderUnavailable) -> Delivery:
        """Stop the batch: this and every message not yet started stay ``pending``."""
        with self._stop_lock:
            if self._stop is None:
                self._stop = error
        return Delivery("deferred", error=str(error))

    # One message, on a worker thread.

    def _deliver(
        self, content: Content, recipient: Recipient, index: int, log: DeliveryLog
    ) -> Delivery:
        """One message, reported to ``log`` before and after: a worker (one connection)
        puts its next message on the wire only once this one's outcome is recorded."""
        if self._stop is not None:
            return Delivery("deferred", error=f"not attempted: {self._stop}")
        if not log.starting(index):  # waits for the pace, then hands over
            return NOT_SUBSCRIBED
        delivery = self._attempt(self.prepare(content, recipient), index, log)
        if delivery is not NOT_SUBSCRIBED:
            log.finished(index, delivery)
        return delivery

    def _attempt(self, message: Message, index: int, log: DeliveryLog) -> Delivery:
        """Hand the message over, again after the back-off while the answer is temporary."""
        last_error = ""
        for retry in range(self.backoff.retries + 1):
            if retry:
                # Not taken: back to pending while we wait, handed over again after it.
                log.finished(index, Delivery("deferred", error=f"to retry: {last_error}"))
                wait = self.backoff.before_retry(retry - 1, reason=last_error)
                if self._stop is not None:
                    return Delivery("deferred", error=f"not attempted: {self._stop}")
                if not log.starting(index, wait=wait):
                    return NOT_SUBSCRIBED
            outcome = self.try_once(message)
            if isinstance(outcome, Delivery):
                return outcome
            last_error = outcome
        return self.out_of_retries(last_error)
