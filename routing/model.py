"""The routing file's schema: campaigns (windows in JST), partners, per-option chains, referral lines."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from routing.configfile import Strict

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def minutes(hhmm: str) -> int:
    """'16:30' -> 990; '24:00' -> 1440 (end of day)."""
    hh, _, mm = hhmm.partition(":")
    return int(hh) * 60 + int(mm)


HHMM = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"
MMDD = r"^(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"


class HoursRule(Strict):
    """Open from `from` to `to` (half-open, JST) on the listed weekdays, or on the listed days of the month."""

    days: list[Weekday] | Literal["daily"] = "daily"
    monthdays: list[Annotated[int, Field(ge=1, le=31)]] | None = None
    start: str = Field(alias="from", pattern=HHMM)
    end: str = Field(alias="to", pattern=HHMM)

    @model_validator(mode="after")
    def _ordered(self) -> HoursRule:
        if minutes(self.end) <= minutes(self.start):
            raise ValueError(f"'to' ({self.end}) must be after 'from' ({self.start}); "
                             "split a range that crosses midnight in two")
        return self


class Closure(Strict):
    """Closed every year from one month-day to another, both inclusive (may wrap the new year)."""

    start: str = Field(alias="from", pattern=MMDD)
    end: str = Field(alias="to", pattern=MMDD)


class Referral(Strict):
    id: str
    name: str
    name_en: str
    number: str = Field(pattern=r"^[0-9][0-9-]{2,15}$")
    hours: list[HoursRule] = Field(min_length=1)
    closed: list[Closure] = Field(default_factory=list)
    suits: list[str] = Field(min_length=1, description="option ids this line suits, or 'all'")
    source: str = Field(min_length=1)
    checked: dt.date
    note: str | None = None


class Partner(Strict):
    id: str
    name: str
    kind: Literal["queue", "phone"]
    queue: str | None = None
    number: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    ring_timeout: int = Field(default=20, ge=5, le=60)
    note: str | None = None

    @property
    def contact(self) -> str:
        """The queue name or the number this partner is reached at."""
        return (self.queue if self.kind == "queue" else self.number) or ""

    @model_validator(mode="after")
    def _contact(self) -> Partner:
        if self.kind == "queue" and not self.queue:
            raise ValueError("a partner of kind 'queue' needs 'queue' (the Twilio queue name)")
        if self.kind == "phone" and not self.number:
            raise ValueError("a partner of kind 'phone' needs 'number' (E.164, e.g. +815000000001)")
        return self


class Campaign(Strict):
    id: str
    name: str
    opens: AwareDatetime
    closes: AwareDatetime
    status: Literal["confirmed", "assumed", "provisional"]
    source: str = Field(min_length=1)
    checked: dt.date
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Campaign:
        if self.closes <= self.opens:
            raise ValueError(f"'closes' ({self.closes.isoformat()}) must be after 'opens' ({self.opens.isoformat()})")
        return self


class RoutingFile(Strict):
    timezone: Literal["Asia/Tokyo"] = "Asia/Tokyo"
    general_option: str = "general"
    campaigns: list[Campaign] = Field(min_length=1)
    partners: list[Partner] = Field(min_length=1)
    chains: dict[str, list[str]] = Field(description="option id -> partner ids, tried in order")
    referrals: list[Referral] = Field(min_length=1)

    @field_validator("chains")
    @classmethod
    def _nonempty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for option, chain in v.items():
            if not chain:
                raise ValueError(f"chain for option '{option}' is empty; name at least one partner id")
        return v
