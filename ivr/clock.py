"""The service's clock: real time, or real time shifted so that it started at a chosen instant (IVR_CLOCK)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

UTC = dt.UTC


def parse_instant(text: str) -> dt.datetime:
    """An ISO-8601 instant with its zone (…+09:00 or …Z). A bare local time is refused: it would be ambiguous."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO-8601 instant; write e.g. 2025-05-03T03:00:00+09:00") from None
    if value.tzinfo is None:
        raise ValueError(f"'{text}' has no zone; write it with one, e.g. {value.isoformat()}+09:00 for JST")
    return value


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
        return cls(parse_instant(value)) if value else cls()

    def now(self) -> dt.datetime:
        if self.frozen and self._start is not None:
            return dt.datetime.fromtimestamp(self._start, UTC)
        return dt.datetime.fromtimestamp(self._source() + self.offset, UTC)

    def describe(self) -> dict[str, object]:
        return {"now": self.now().isoformat(), "simulated": self.simulated, "frozen": self.frozen,
                "offset_seconds": round(self.offset, 3)}
