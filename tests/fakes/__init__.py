"""Real servers on 127.0.0.1 standing in for the mail services, for tests and benchmarks."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class LocalServer:
    """``with Fake() as server:`` starts it and always stops it; subclasses define both."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
