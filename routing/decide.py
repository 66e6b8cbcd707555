"""Who answers, when: pure functions of (routing config, instant, option, step). No clock reads, no I/O."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from routing.model import WEEKDAYS, Campaign, Closure, HoursRule, OptionPlan, Partner, Referral, RoutingFile, minutes

JST = ZoneInfo("Asia/Tokyo")
DEFAULT_FILE = Path(__file__).with_name("routing.yaml")
OPTION_REF = "option:"
DAY = 1440


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a caller goes now. kind: queue/phone (a partner), referrals (chain exhausted), closed (no window open)."""

    kind: Literal["queue", "phone", "referrals", "closed"]
    option: str
    step: int
    partner: Partner | None = None
    campaign: Campaign | None = None
    next_campaign: Campaign | None = None
    referrals: tuple[Referral, ...] = ()


class Hours:
    """Weekly or day-of-month opening hours with annual closures, compiled for a minute-exact check in JST."""

    __slots__ = ("always", "closures", "rules")

    def __init__(self, rules: list[HoursRule] | None, closures: Sequence[Closure] = ()):
        self.always = rules is None and not closures
        self.closures = [(tuple(map(int, c.start.split("-"))), tuple(map(int, c.end.split("-")))) for c in closures]
        self.rules = [
            (
                frozenset(range(7)) if h.days == "daily" else frozenset(WEEKDAYS.index(d) for d in h.days),
                frozenset(h.monthdays) if h.monthdays else None,
                minutes(h.start),
                minutes(h.end),
            )
            for h in (rules if rules is not None else [HoursRule.model_validate({"from": "00:00", "to": "24:00"})])
        ]

    def open_at(self, local: dt.datetime) -> bool:
        if self.always:
            return True
        md = (local.month, local.day)
        for a, b in self.closures:
            if (a <= md <= b) if a <= b else (md >= a or md <= b):
                return False
        minute = local.hour * 60 + local.minute
        wd = local.weekday()
        for days, monthdays, start, end in self.rules:
            day_ok = local.day in monthdays if monthdays is not None else wd in days
            if day_ok and start <= minute < end:
                return True
        return False

    def boundaries(self) -> set[int]:
        return {m for _, _, start, end in self.rules for m in (start, end % DAY)}


class _Line:
    __slots__ = ("hours", "referral", "suits", "suits_all")

    def __init__(self, r: Referral):
        self.referral = r
        self.suits_all = "all" in r.suits
        self.suits = frozenset(r.suits)
        self.hours = Hours(r.hours, r.closed)


class _Shift:
    __slots__ = ("crosses", "end", "partner", "start")

    def __init__(self, partner: Partner, start: str, end: str):
        self.partner = partner
        self.start = minutes(start)
        self.end = minutes(end)
        self.crosses = self.end < self.start  # e.g. 22:00-02:00 runs past midnight


class _Plan:
    """One option's plan, compiled: usual shifts, date exceptions, overflow, the referral set."""

    __slots__ = ("exceptions", "overflow", "referrals", "shifts")

    def __init__(self, spec: OptionPlan, partners: dict[str, Partner], lines: dict[str, _Line]):
        self.shifts = tuple(_Shift(partners[s.partner], s.start, s.end) for s in spec.shifts)
        self.exceptions = {e.date: tuple(_Shift(partners[s.partner], s.start, s.end) for s in e.shifts)
                           for e in spec.exceptions}
        self.overflow: tuple[Partner | str, ...] = tuple(
            item.removeprefix(OPTION_REF) if item.startswith(OPTION_REF) else partners[item] for item in spec.overflow)
        self.referrals = tuple(lines[i] for i in spec.referrals)

    def staffed(self, local: dt.datetime) -> list[Partner]:
        """Partners whose shift covers this local minute: today's shifts, and yesterday's that ran past midnight."""
        minute = local.hour * 60 + local.minute
        today = self.exceptions.get(local.date(), self.shifts) if self.exceptions else self.shifts
        out = [s.partner for s in today if (minute >= s.start if s.crosses else s.start <= minute < s.end)]
        yesterday = self.exceptions.get(local.date() - dt.timedelta(days=1), self.shifts) if self.exceptions \
            else self.shifts
        out += [s.partner for s in yesterday if s.crosses and minute < s.end]
        return out


class Routing:
    """A validated routing file, compiled for fast decisions."""

    def __init__(self, spec: RoutingFile, source: str = "<memory>"):
        self.spec = spec
        self.source = source
        self.general = spec.general_option
        self.campaigns = tuple(sorted(spec.campaigns, key=lambda c: c.opens))
        self._opens = [c.opens.timestamp() for c in self.campaigns]
        self.partners = {p.id: p for p in spec.partners}
        self._partner_hours = {p.id: Hours(p.hours) for p in spec.partners}
        self._lines = tuple(_Line(r) for r in spec.referrals)
        by_id = {line.referral.id: line for line in self._lines}
        self.plans = {name: {option: _Plan(op, self.partners, by_id) for option, op in plan.items()}
                      for name, plan in spec.plans.items()}

    # -- windows ------------------------------------------------------------------------------------------------
    def window_at(self, instant: dt.datetime) -> Campaign | None:
        """The campaign whose half-open window [opens, closes) holds the instant."""
        i = bisect.bisect_right(self._opens, instant.timestamp()) - 1
        if i >= 0 and instant < self.campaigns[i].closes:
            return self.campaigns[i]
        return None

    def next_window(self, instant: dt.datetime) -> Campaign | None:
        i = bisect.bisect_right(self._opens, instant.timestamp())
        return self.campaigns[i] if i < len(self.campaigns) else None

    # -- who answers --------------------------------------------------------------------------------------------
    def _available(self, partner: Partner, local: dt.datetime) -> bool:
        return self._partner_hours[partner.id].open_at(local)

    def offered(self, instant: dt.datetime) -> frozenset[str]:
        """Options with a partner on shift right now: the ones the menu speaks. Empty outside every window."""
        campaign = self.window_at(instant)
        if campaign is None:
            return frozenset()
        local = instant.astimezone(JST)
        return frozenset(option for option, plan in self.plans[campaign.plan].items()
                         if any(self._available(p, local) for p in plan.staffed(local)))

    def chain(self, instant: dt.datetime, option: str, campaign: Campaign | None = None) -> tuple[Partner, ...]:
        """Partners to try in order: the option's shift, its overflow (options expanded), then the general line."""
        campaign = campaign or self.window_at(instant)
        if campaign is None:
            return ()
        plan = self.plans[campaign.plan]
        local = instant.astimezone(JST)
        out: list[Partner] = []
        seen: set[str] = set()

        def expand(opt: str) -> None:
            if opt in seen or opt not in plan:
                return
            seen.add(opt)
            for p in plan[opt].staffed(local):
                if p not in out and self._available(p, local):
                    out.append(p)
            for item in plan[opt].overflow:
                if isinstance(item, str):
                    expand(item)
                elif item not in out and self._available(item, local):
                    out.append(item)

        expand(option)
        expand(self.general)
        return tuple(out)

    def open_referrals(self, instant: dt.datetime, option: str, limit: int = 2,
                       campaign: Campaign | None = None) -> tuple[Referral, ...]:
        """Lines open at this instant for the option: its referral set, else lines that suit it, else any line."""
        local = instant.astimezone(JST)
        plan = self.plans[campaign.plan].get(option) if campaign else None
        picked: list[_Line] = []
        tiers = ((plan.referrals if plan else ()), [x for x in self._lines if option in x.suits],
                 [x for x in self._lines if x.suits_all])
        for tier in tiers:
            picked += [x for x in tier if x not in picked and x.hours.open_at(local)]
        return tuple(x.referral for x in picked[:limit])

    def decide(self, instant: dt.datetime, option: str, step: int = 0) -> Decision:
        """Step `step` of the option's chain at this instant; past the chain, the referral lines open now."""
        campaign = self.window_at(instant)
        if campaign is None:
            option = option if any(option in p for p in self.plans.values()) else self.general
            return Decision("closed", option, step, next_campaign=self.next_window(instant),
                            referrals=self.open_referrals(instant, option))
        if option not in self.plans[campaign.plan]:
            option = self.general
        chain = self.chain(instant, option, campaign)
        if 0 <= step < len(chain):
            partner = chain[step]
            return Decision(partner.kind, option, step, partner=partner, campaign=campaign)
        return Decision("referrals", option, step, campaign=campaign,
                        referrals=self.open_referrals(instant, option, campaign=campaign))

    def general_target(self, instant: dt.datetime) -> Partner | None:
        """The first partner of the general line now: where a caller goes when nothing else can be decided."""
        chain = self.chain(instant, self.general)
        return chain[0] if chain else None

    def boundaries(self) -> set[int]:
        """Every minute of the day at which some shift or hours rule starts or ends (for coverage checks)."""
        out = {0}
        for plan in self.plans.values():
            for op in plan.values():
                for shifts in (op.shifts, *op.exceptions.values()):
                    out |= {m % DAY for s in shifts for m in (s.start, s.end)}
        for hours in self._partner_hours.values():
            out |= hours.boundaries()
        return out
