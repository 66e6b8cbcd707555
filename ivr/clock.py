"""The service's clock: real time, or real time shifted so that it started at a chosen instant (IVR_CLOCK)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from common.facts import parse_instant

UTC = dt.UTC


class Clock:
    """now() is the real time plus a fixed offset; `frozen` stops it at the start instant (rehearsals and tests)."""

    def __init__(self, start: dt.datetime | None = None, *, frozen: bool = False,
                 source: Callable[[], float] = time.time):
        self._source = source
        self.simulated = start is not None
        self.frozen = frozen and start is not None
        self._start = start.timestamp() if start is not None else None
        self.offset = (self._start - source()) if self._start is not None else 0.0

    @classmethod
    def from_setting(cls, value: str | None) -> Clock:
        """The clock IVR_CLOCK asks for: starting at that instant and running on, or real time when unset."""
        return cls(parse_instant(value)) if value else cls()

    def now(self) -> dt.datetime:
        """The current instant, in UTC."""
        if self.frozen and self._start is not None:
            return dt.datetime.fromtimestamp(self._start, UTC)
        return dt.datetime.fromtimestamp(self._source() + self.offset, UTC)

    def describe(self) -> dict[str, object]:
        """What /readyz and the start log line say about the clock."""
        return {"now": self.now().isoformat(), "simulated": self.simulated, "frozen": self.frozen,
                "offset_seconds": round(self.offset, 3)}
