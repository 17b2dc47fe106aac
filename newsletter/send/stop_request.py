"""A request to stop a run between batches, and the one home of the words that say why:
the campaign's stored reason, the schedule's note, run-due's and serve's log lines and
``send``'s last line all name the signal that asked (Ctrl-C, or a stop request from
systemd, docker stop or kill)."""

from __future__ import annotations

import signal
import threading

CTRL_C = "interrupted (Ctrl-C)"
SIGNALLED: dict[int, str] = {signal.SIGINT: CTRL_C, signal.SIGTERM: "stopped (SIGTERM)"}
_AFTER = (
    ": nothing more was handed over, and everyone not yet sent stays pending; send again to resume"
)


class StopRequest(threading.Event):
    """The event a run watches (``stopping``), set through :meth:`stop` with the signal
    that asked, so that the run can say why it stopped."""

    def __init__(self) -> None:
        super().__init__()
        self.reason = CTRL_C

    def stop(self, signum: int) -> None:
        self.reason = SIGNALLED.get(signum, CTRL_C)
        self.set()


def stopped_reason(stopping: threading.Event) -> str:
    """What a run stopped by ``stopping`` records as its reason. A plain event (a
    library caller's, the tests') reads as Ctrl-C, which is what the CLI set before."""
    reason = stopping.reason if isinstance(stopping, StopRequest) else CTRL_C
    return f"{reason}{_AFTER}"


def signalled(stopped: str | None) -> str | None:
    """The short reason (``interrupted (Ctrl-C)``, ``stopped (SIGTERM)``) when a run's
    ``stopped`` says a signal stopped it; None for any other reason, or none."""
    if stopped is None or not stopped.endswith(_AFTER):
        return None
    reason = stopped.removesuffix(_AFTER)
    return reason if reason in SIGNALLED.values() else None
