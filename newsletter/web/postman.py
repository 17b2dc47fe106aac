"""Transactional mail from the web app (signup confirmations, manage links), sent off the
request thread.

``/manage`` and ``/subscribe`` must answer the same whether or not an address is known.
Sending mail takes long enough (an SMTP conversation, an HTTP call) that a page which
waited for it would tell by its timing; so the page is answered at once and the mail
goes out from a small worker pool. A failed send is logged, never shown to the visitor.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Letter:
    to: str
    subject: str
    html: str
    text: str


SendFunction = Callable[[Letter], None]


class Postman:
    def __init__(self, send: SendFunction, *, workers: int = 2) -> None:
        self._send = send
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="newsletter-mail")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def post(self, letter: Letter) -> None:
        future = self._pool.submit(self._deliver, letter)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._forget)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for every letter posted so far (tests; an orderly shutdown)."""
        with self._lock:
            pending = set(self._pending)
        wait(pending, timeout=timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _deliver(self, letter: Letter) -> None:
        try:
            self._send(letter)
        except Exception:
            # The visitor has their answer already; the operator needs the reason.
            log.exception("could not send %r to a subscriber", letter.subject)

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
