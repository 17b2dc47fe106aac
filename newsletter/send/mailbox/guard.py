"""Reading what strangers send within bounds: one message never stops the mailbox.

Anyone can mail the return address, so a message may be huge, nested thousands of
levels deep or built to make a parser slow. A :class:`Reader` reads each message
with a size limit (``mailbox.max_message_size``; the source fetches no more than a
head of a larger one), a bound on nesting (:data:`~newsletter.send.mailbox.classify.MAX_PARTS`)
and a budget of CPU time (``mailbox.message_timeout``); whatever a message does past those,
or any error reading it, it comes back as ``quarantine`` with the reason, and the run
goes on with the next one. A database failure still stops the run: that is not the
message's doing.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from types import TracebackType

from newsletter.send.mailbox.classify import Classified, classify, message_key, read_headers
from newsletter.send.return_tokens import LinkKeyOf, ReturnTokens


@dataclass(frozen=True)
class Limits:
    max_bytes: int  # mailbox.max_message_size
    seconds: float  # mailbox.message_timeout, CPU seconds


class _OverBudget(BaseException):
    """Raised by the timer inside the reading; a BaseException, so that no ``except
    Exception`` in a bounce detector can swallow it."""


class _LookupFailed(BaseException):
    """The store failed while a token was checked: the run stops, the message is not at fault."""


class Reader:
    """Reads messages within ``limits``; a context manager around the run.

    The time budget is a profiling timer (SIGPROF): it also stops a regular expression
    running in C, and counts the work done, not the time the process waited for a busy
    machine. The handler is installed once for the run (and the signal's previous
    handler and timer put back after it); each message only arms and disarms the timer.
    Signals reach only the main thread: elsewhere messages are read without a budget.
    """

    def __init__(self, tokens: ReturnTokens, limits: Limits) -> None:
        self.tokens = tokens
        self.limits = limits
        self._timed = False
        self._previous: object = None
        self._outer: tuple[float, float] = (0.0, 0.0)

    def __enter__(self) -> Reader:
        self._timed = threading.current_thread() is threading.main_thread() and hasattr(
            signal, "setitimer"
        )
        if self._timed:
            self._previous = signal.signal(signal.SIGPROF, _over_budget)
            self._outer = signal.setitimer(signal.ITIMER_PROF, 0)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timed:
            signal.setitimer(signal.ITIMER_PROF, 0)
            signal.signal(signal.SIGPROF, self._previous)  # type: ignore[arg-type]
            if self._outer[0]:
                signal.setitimer(signal.ITIMER_PROF, *self._outer)

    def classify(self, raw: bytes, size: int, link_key_of: LinkKeyOf) -> Classified:
        """:func:`classify` of ``raw`` (the first bytes of a message of ``size``
        bytes), or ``quarantine`` with the reason it could not be read within the
        limits (its key from the header block alone)."""
        limits = self.limits
        if size > limits.max_bytes:
            reason = f"larger than mailbox.max_message_size ({limits.max_bytes:,} bytes)"
            return Classified(message_key(read_headers(raw), raw), "quarantine", reason=reason)

        def looked_up(subscriber_id: int) -> str | None:
            try:
                return link_key_of(subscriber_id)
            except Exception as error:
                raise _LookupFailed from error

        try:
            try:
                if self._timed:
                    signal.setitimer(signal.ITIMER_PROF, limits.seconds)
                return classify(raw, self.tokens, looked_up)
            finally:
                if self._timed:
                    signal.setitimer(signal.ITIMER_PROF, 0)
        except _LookupFailed as failed:
            assert failed.__cause__ is not None
            raise failed.__cause__ from None
        except _OverBudget:
            reason = f"not read within mailbox.message_timeout ({limits.seconds:g} s)"
        except Exception as error:  # RecursionError, a parser's or a detector's bug
            reason = f"cannot be read ({type(error).__name__})"
        return Classified(message_key(read_headers(raw), raw), "quarantine", reason=reason)


def _over_budget(*_: object) -> None:  # (signal number, frame)
    raise _OverBudget
