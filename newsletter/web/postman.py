"""Transactional mail from the web app (signup confirmations, manage links), sent off the
request thread but never only held in memory.

``/manage`` and ``/subscribe`` must answer the same whether or not an address is known.
Sending mail takes long enough (an SMTP conversation, an HTTP call) that a page which
waited for it would tell by its timing; so :meth:`Postman.post` only commits the letter
to the durable queue (:mod:`newsletter.send.mail_queue`, one small INSERT) before the page is
answered, and mail threads send it. They also drain, at start and every few seconds,
what an earlier process left (killed after answering, or retries due). A failed send
is logged and retried, never shown to the visitor.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from newsletter.send.mail_queue import Letter, SendLetter, due_now, enqueue, process_owner, send_due

__all__ = ["Letter", "Postman"]

log = logging.getLogger(__name__)

POLL_SECONDS = 5.0  # how soon retries and letters of dead processes go out


class Postman:
    def __init__(
        self, engine: Engine, send: SendLetter, *, workers: int = 2, poll: float = POLL_SECONDS
    ) -> None:
        self._engine = engine
        self._send = send
        self._poll = poll
        self._owner = process_owner()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name=f"newsletter-mail-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def post(self, letter: Letter) -> None:
        """Queue ``letter`` durably (committed when this returns) and wake a mail thread."""
        enqueue(self._engine, letter)
        self._wake.set()

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until no letter is due (tests; an orderly shutdown)."""
        deadline = time.monotonic() + timeout
        while due_now(self._engine) and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is due for up to ``timeout`` seconds, then stop; the rest stays queued
        for the next start (or ``newsletter flush-mail``)."""
        self.drain(timeout)
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        left = due_now(self._engine)
        if left:
            log.warning(
                "%d mail(s) still queued at shutdown: the next start of the web app, or "
                "'newsletter flush-mail', sends them",
                left,
            )

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                tally = send_due(self._engine, self._send, self._owner)
            except Exception:
                # The database away for a moment: the letters stay queued; try again.
                log.exception("the mail queue could not be read; trying again shortly")
            else:
                for error in tally.errors:
                    log.error("gave up sending %s", error)
                if tally.retrying:
                    log.warning("%d mail(s) not sent yet; they are retried later", tally.retrying)
            self._wake.wait(self._poll)
