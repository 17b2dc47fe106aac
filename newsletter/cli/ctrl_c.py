"""Ctrl-C for the commands that send (``send``, ``run-due``, ``serve``'s scheduled sends):
the first one asks the run to stop between batches, with everything recorded; a second
one interrupts at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from newsletter.send.stop_request import StopRequest

STOPPING = "Stopping: nothing more is handed over (Ctrl-C again to quit now)."


@contextmanager
def stop_on_ctrl_c(
    *, sigterm: bool = False, interrupt: bool = False, message: str = STOPPING
) -> Iterator[StopRequest]:
    """An event that the first Ctrl-C sets instead of raising KeyboardInterrupt: the run
    ends its waits and stops before its next hand-over, recording everything first (an
    interrupt in the middle of a database call would leave its connection unusable). A
    second Ctrl-C interrupts at once, as usual.

    ``sigterm``: a stop request (systemd, docker stop, kill) does the same. ``interrupt``:
    the first signal then also raises KeyboardInterrupt in the main thread, for ``serve``,
    whose main thread only runs the web server (which must stop) while its sends run in
    another thread (which the event stops after its batch)."""
    stopping = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stopping  # signal handlers live in the main thread only
        return
    signals = (signal.SIGINT, signal.SIGTERM) if sigterm else (signal.SIGINT,)
    previous: dict[int, Any] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.stop(signum)  # the reason the run records names the signal
        for signum in signals:  # a second signal quits at once
            signal.signal(signum, previous[signum])
        click.echo(f"\n{message}", err=True)
        if interrupt:
            raise KeyboardInterrupt

    for signum in signals:
        previous[signum] = signal.signal(signum, on_signal)
    try:
        yield stopping
    finally:
        for signum in signals:
            signal.signal(signum, previous[signum])
