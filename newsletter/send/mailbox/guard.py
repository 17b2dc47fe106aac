"""Reading what strangers send within bounds: one message never stops the mailbox.

Anyone can mail the return address, so a message may be huge, nested thousands of
levels deep or built to make a parser slow. :func:`classify_within` reads one message
with a size limit (``mailbox.max_message_size``; the source fetches no more than a
head of a larger one), a bound on nesting (:data:`~newsletter.send.mailbox.classify.MAX_PARTS`)
and a budget of CPU time (``mailbox.message_timeout``); whatever a message does past those,
or any error reading it, it comes back as ``quarantine`` with the reason, and the run
goes on with the next one. A database failure still stops the run: that is not the
message's doing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from newsletter.send.mailbox.classify import Classified, classify, message_key
from newsletter.send.return_tokens import LinkKeyOf, ReturnTokens


@dataclass(frozen=True)
class Limits:
    max_bytes: int  # mailbox.max_message_size
    seconds: float  # mailbox.message_timeout


class _OverBudget(BaseException):
    """Raised by the alarm inside the reading; a BaseException, so that no ``except
    Exception`` in a bounce detector can swallow it."""


class _LookupFailed(BaseException):
    """The store failed while a token was checked: the run stops, the message is not at fault."""


def classify_within(
    raw: bytes,
    size: int,
    tokens: ReturnTokens,
    link_key_of: LinkKeyOf,
    limits: Limits,
    key: str | None = None,
) -> Classified:
    """:func:`classify` of ``raw`` (the first bytes of a message of ``size`` bytes),
    or ``quarantine`` with the reason it could not be read within ``limits``.
    ``key``: its :func:`message_key`, when the caller has it."""
    key = key or message_key(raw)
    if size > limits.max_bytes:
        reason = f"larger than mailbox.max_message_size ({limits.max_bytes:,} bytes)"
        return Classified(key, "quarantine", reason=reason)

    def looked_up(subscriber_id: int) -> str | None:
        try:
            return link_key_of(subscriber_id)
        except Exception as error:
            raise _LookupFailed from error

    try:
        with _time_budget(limits.seconds):
            return classify(raw, tokens, looked_up, key)
    except _LookupFailed as failed:
        assert failed.__cause__ is not None
        raise failed.__cause__ from None
    except _OverBudget:
        reason = f"not read within mailbox.message_timeout ({limits.seconds:g} s)"
    except Exception as error:  # RecursionError, a parser's or a detector's bug
        reason = f"cannot be read ({type(error).__name__})"
    return Classified(key, "quarantine", reason=reason)


@contextlib.contextmanager
def _time_budget(seconds: float) -> Iterator[None]:
    """Raise :class:`_OverBudget` in the code run inside once it has used ``seconds``
    of CPU time.

    A profiling timer (SIGPROF): it also stops a regular expression running in C, and
    counts the work done, not the time the process waited for a busy machine. Signals
    reach only the main thread: elsewhere the code runs without a budget. A timer
    someone else had set is put back, less the time spent here.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def on_timer(*_: object) -> None:  # (signal number, frame)
        raise _OverBudget

    previous = signal.signal(signal.SIGPROF, on_timer)
    started = time.process_time()
    outer, interval = signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
        if outer:
            left = max(outer - (time.process_time() - started), 0.001)
            signal.setitimer(signal.ITIMER_PROF, left, interval)
