"""Ctrl-C for the commands that send (``send``, ``run-due``): the first one asks the run
to stop between batches, with everything recorded; a second one interrupts at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click


@contextmanager
def stop_on_ctrl_c() -> Iterator[threading.Event]:
    """An event that the first Ctrl-C sets instead of raising KeyboardInterrupt: the run
    ends its waits and stops before its next hand-over, recording everything first (an
    interrupt in the middle of a database call would leave its connection unusable). A
    second Ctrl-C interrupts at once, as usual."""
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping  # signal handlers live in the main thread only
        return

    def on_ctrl_c(_signum: int, _frame: object) -> None:
        stopping.set()
        signal.signal(signal.SIGINT, previous)
        click.echo("\nStopping: nothing more is handed over (Ctrl-C again to quit now).", err=True)

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield stopping
    finally:
        signal.signal(signal.SIGINT, previous)
