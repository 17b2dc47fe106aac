"""Group commit for RFC 8058 one-click unsubscribes.

When an issue lands, mailbox providers' one-click POSTs arrive in bursts. Each one is a
write, and SQLite writes one transaction at a time, whose fixed cost (taking the write
lock, building the statements, committing) is most of a request. So the requests hand
their unsubscribe to one writer thread and wait; the writer takes everything that queued
up while it was busy and applies it with :meth:`Store.unsubscribe_many`, one
transaction for the lot. A request is answered only after its transaction committed,
so a 200 still means "done". Alone, a request waits for nobody.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)

SOURCE = "one-click"  # recorded with each unsubscribe
MAX_BATCH = 200
WAIT_SECONDS = 30.0  # SQLite's own busy timeout; past it the request fails (500)

_Request = tuple[int, "int | None", "str | None", "Future[bool]"]
_STOP: Any = object()


class OneClickWriter:
    def __init__(self, store: Any) -> None:
        self.store = store
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="newsletter-one-click", daemon=True)
        self._thread.start()

    def unsubscribe(
        self, subscriber_id: int, campaign_id: int | None, link_key: str | None
    ) -> bool:
        """Unsubscribe and wait until it is committed; True if this batch changed the
        subscriber's status (False: already unsubscribed, suppressed, unknown, or a
        link issued to someone else)."""
        done: Future[bool] = Future()
        self._queue.put((subscriber_id, campaign_id, link_key, done))
        return done.result(timeout=WAIT_SECONDS)

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=WAIT_SECONDS)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    request = self._queue.get_nowait()
                except queue.Empty:
                    break
                if request is _STOP:
                    self._queue.put(_STOP)  # finish this batch, then stop
                    break
                batch.append(request)
            self._apply(batch)

    def _apply(self, batch: list[_Request]) -> None:
        try:
            changed = self.store.unsubscribe_many(
                [(subscriber_id, campaign, key) for subscriber_id, campaign, key, _ in batch],
                source=SOURCE,
            )
        except Exception as error:  # every waiting request fails with it, and is logged there
            for *_, done in batch:
                done.set_exception(error)
            return
        for subscriber_id, *_, done in batch:
            done.set_result(subscriber_id in changed)
