"""`with X() as x:` starts x and always stops it: the shape of every local service here."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class StartStop:
    """A service started on entry and stopped on exit, whatever happened inside."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
