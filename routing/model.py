"""The routing file's schema: campaigns (windows in JST), partners, per-option chains, referral lines."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from common.configfile import Strict
from common.facts import E164_PATTERN, HOME
from routing.pins import COUNSELLOR_ID, hash_problem

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


ReferralKind = Literal["phone", "chat", "mail"]


class Referral(Strict):
    """Another line a caller is told about when no partner can answer: a phone line (told by its number), or a chat or
    mail consultation (told by name, its address in the SMS), with its hours and its source."""

    id: str
    name: str
    name_en: str
    names: dict[str, str] = Field(default_factory=dict, description="its name in other languages (code -> name); "
                                  "English otherwise, Japanese for Japanese speakers")
    kind: ReferralKind = Field(default="phone", description="phone: callers are told its number; chat, mail: online")
    number: str | None = Field(default=None, pattern=r"^[0-9][0-9-]{2,15}$", description="phone lines only")
    url: str | None = Field(default=None, description="chat and mail lines only: where to write (https), for the SMS")
    # The SMS stays on the caller's phone, where someone else (an abuser, a parent) may read it. A line is named in
    # it only when marked so: a new line is safe until someone has judged its name; the others are listed by number
    # or address alone, in the order the caller heard them by name (a made-up label would hide no more, and would
    # need words in every language).
    sms_named: bool = Field(default=False, description="true: its name says nothing about why someone calls, so "
                            "the SMS may show it; false: the SMS lists its number or address alone")
    hours: list[HoursRule] = Field(min_length=1)
    closed: list[Closure] = Field(default_factory=list)
    suits: list[str] = Field(min_length=1, description="option ids this line suits, or 'all'")
    languages: list[str] = Field(default_factory=list, description="languages it serves besides Japanese, or 'any'")
    source: str = Field(min_length=1)
    checked: dt.date
    note: str | None = None

    @property
    def online(self) -> bool:
        """A chat or mail consultation: reached by writing, not by a number callers are told."""
        return self.kind != "phone"

    @field_validator("url")
    @classmethod
    def _https(cls, url: str | None) -> str | None:
        if url is not None and not re.fullmatch(r"https://[^\s/?#]+\.[^\s/?#]+(/\S*)?", url):
            raise ValueError(f"'{url}' is not an https address; write it as callers open it, e.g. https://talkme.jp/")
        return url

    @model_validator(mode="after")
    def _reached(self) -> Referral:
        if self.kind == "phone":
            if self.number is None:
                raise ValueError("a referral of kind 'phone' needs 'number' (as callers dial it, e.g. 0120-279-338)")
            if self.url is not None:
                raise ValueError("'url' is for chat and mail lines; a phone line is reached by its 'number'")
        elif self.number is not None:
            raise ValueError(f"a referral of kind '{self.kind}' has no 'number' (callers are told numbers only for "
                             "phone lines): remove it, or make the line kind 'phone'")
        return self


class Partner(Strict):
    """An organisation that answers calls, through a Twilio queue or a phone number, in its languages and hours."""

    id: str
    name: str
    kind: Literal["queue", "phone"]
    queue: str | None = None
    number: str | None = Field(default=None, pattern=E164_PATTERN)
    ring_timeout: int = Field(default=20, ge=5, le=60)
    max_wait: int = Field(default=300, ge=30, le=3600, description="seconds in its queue before the caller rolls on")
    languages: list[str] = Field(default_factory=lambda: [HOME], min_length=1)
    capacity: int | None = Field(default=None, ge=1, description="concurrent calls; none: no cap")
    interpreter: bool = Field(default=False, description="takes callers in any language through an interpreter")
    weight: int = Field(default=1, ge=1, le=100, description="its share of the calls where a plan shares a shift "
                        "`weighted` (weight 2 beside weight 1: two calls in three)")
    hours: list[HoursRule] | None = Field(default=None, description="the partner's own hours; none: always")
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


class Shift(Strict):
    """A partner answers from `from` to `to` each day (JST); `to` before `from` runs past midnight."""

    partner: str
    start: str = Field(alias="from", pattern=HHMM)
    end: str = Field(alias="to", pattern=HHMM)

    @model_validator(mode="after")
    def _not_empty(self) -> Shift:
        if minutes(self.end) == minutes(self.start):
            raise ValueError(f"'from' and 'to' are both {self.start}; write 00:00 to 24:00 for all day")
        return self


class DateShifts(Strict):
    """On this JST date the listed shifts replace the usual ones (an empty list: nobody that day)."""

    date: dt.date
    shifts: list[Shift]


class OptionPlan(Strict):
    """Who answers one menu option: its shifts, date exceptions, overflow, and the referral lines at the end."""

    shifts: list[Shift] = Field(default_factory=list)
    exceptions: list[DateShifts] = Field(default_factory=list)
    overflow: list[str] = Field(default_factory=list,
                                description="tried in order after the shift: partner ids, or option:<id>")
    referrals: list[str] = Field(default_factory=list,
                                 description="referral ids for the end of the chain; empty: lines that suit it")
    urgent: bool = Field(default=False, description="its callers wait in each partner's -urgent queue, taken first")
    share: Literal["weighted", "least-waiting"] | None = Field(
        default=None, description="several partners on shift at once share the calls: weighted (by each partner's "
        "weight) or least-waiting (fewest callers waiting per place, from the shared store); none: in shift order")


class Campaign(Strict):
    """A window in which the hotline is open, with the plan and menu layout it uses and where its dates come from."""

    id: str
    name: str
    opens: AwareDatetime
    closes: AwareDatetime
    status: Literal["confirmed", "assumed", "provisional"]
    source: str = Field(min_length=1)
    checked: dt.date
    plan: str = "default"
    menu: str = Field(default="default", description="the menu's key layout for this campaign")
    note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Campaign:
        if self.closes <= self.opens:
            raise ValueError(f"'closes' ({self.closes.isoformat()}) must be after 'opens' ({self.opens.isoformat()})")
        return self


class Counsellor(Strict):
    """One counsellor's own login to the counsellors' line: an id keyed on the phone, the hash of their PIN (never the
    PIN itself), their partner, and optionally the only phones they may call from. Kept in the partners file."""

    id: str = Field(pattern=COUNSELLOR_ID, description="4-8 digits, keyed on the phone then #; quoted in YAML")
    partner: str
    pin_hash: str = Field(description="scrypt$<n>$<r>$<p>$<salt>$<hash>, as `ivr counsellor add` writes it")
    numbers: list[Annotated[str, Field(pattern=E164_PATTERN)]] = Field(
        default_factory=list, description="none: any phone; else the login is refused from any other number")
    pin: None = Field(default=None, exclude=True, description="never: a PIN is kept only as pin_hash")

    @field_validator("id", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        if isinstance(value, int):
            raise ValueError("write the id in quotes (id: \"1001\"), so YAML keeps its digits as they are keyed")
        return value

    @field_validator("pin", mode="before")
    @classmethod
    def _no_clear_pin(cls, value: object) -> None:
        raise ValueError("a PIN is never kept in clear: delete this line (and give the counsellor an `id` if they "
                         "have none), choose a new PIN, since this one has been written down, and set it with "
                         "`ivr counsellor reset --id <id>`, which writes pin_hash")

    @field_validator("pin_hash")
    @classmethod
    def _usable_hash(cls, value: str) -> str:
        problem = hash_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class RoutingFile(Strict):
    """The whole routing file: campaign windows, partners, plans, referral lines and counsellor logins."""

    timezone: Literal["Asia/Tokyo"] = "Asia/Tokyo"
    general_option: str = "general"
    campaigns: list[Campaign] = Field(min_length=1)
    partners: list[Partner] = Field(min_length=1)
    plans: dict[str, dict[str, OptionPlan]] = Field(description="plan id -> option id -> who answers when")
    referrals: list[Referral] = Field(min_length=1)
    counsellors: list[Counsellor] = Field(default_factory=list, description="normally from IVR_PARTNERS_FILE; "
                                          "allowed here too (PIN hashes only), ids unique across both files")


class PartnerContact(Strict):
    """Production contact details for one partner, kept outside the repository (IVR_PARTNERS_FILE)."""

    queue: str | None = None
    number: str | None = Field(default=None, pattern=E164_PATTERN)


class PartnersFile(Strict):
    """The production partners file (IVR_PARTNERS_FILE): real contacts by partner id, and counsellor logins."""

    partners: dict[str, PartnerContact] = Field(default_factory=dict)
    counsellors: list[Counsellor] = Field(default_factory=list)
    supervisors: list[str] = Field(default_factory=list, description="who may reveal a flagged caller's number, two "
                                   "together (`ivr emergency reveal --by NAME --approved-by NAME2`)")
