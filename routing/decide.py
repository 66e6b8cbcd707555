"""Who answers, when: pure functions of (routing config, instant, option, step). No clock reads, no I/O."""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from common.facts import HOME, JST
from routing.model import (
    WEEKDAYS,
    Campaign,
    Closure,
    Counsellor,
    HoursRule,
    OptionPlan,
    Partner,
    Referral,
    RoutingFile,
    minutes,
)
from routing.share import NO_LIVE, Live, shared_order

DEFAULT_FILE = Path(__file__).with_name("routing.yaml")
OPTION_REF = "option:"
URGENT = "-urgent"  # suffix of a partner's queue for the urgent lane (urgent options, callers in crisis)
DAY = 1440
ONE_DAY = dt.timedelta(days=1)


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
    urgent: bool = False  # the urgent lane (an urgent option, or a caller in crisis): the partner's -urgent queue
    interpreter: bool = False  # the partner takes the caller's language through an interpreter (not in its languages)
    first: str | None = None  # the partner a shared shift gave this call: its later steps keep that order


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
        """Open at this JST minute: not in a closure, and inside some rule's day and hours."""
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
        """Minutes of the day at which these hours open or close."""
        return {m for _, _, start, end in self.rules for m in (start, end % DAY)}


class _Line:
    __slots__ = ("hours", "online", "referral", "suits", "suits_all")

    def __init__(self, r: Referral):
        self.referral = r
        self.online = r.online
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

    __slots__ = ("crossing", "exceptions", "overflow", "referrals", "share", "shifts")

    def __init__(self, spec: OptionPlan, partners: dict[str, Partner], lines: dict[str, _Line]):
        self.shifts = tuple(_Shift(partners[s.partner], s.start, s.end) for s in spec.shifts)
        self.exceptions = {e.date: tuple(_Shift(partners[s.partner], s.start, s.end) for s in e.shifts)
                           for e in spec.exceptions}
        self.crossing = any(s.crosses for shifts in (self.shifts, *self.exceptions.values()) for s in shifts)
        self.overflow: tuple[Partner | str, ...] = tuple(
            item.removeprefix(OPTION_REF) if item.startswith(OPTION_REF) else partners[item] for item in spec.overflow)
        self.referrals = tuple(lines[i] for i in spec.referrals)
        self.share = spec.share

    def staffed(self, local: dt.datetime) -> list[Partner]:
        """Partners whose shift covers this local minute: today's shifts, and yesterday's that ran past midnight."""
        minute = local.hour * 60 + local.minute
        if not self.exceptions:
            today = yesterday = self.shifts
        else:
            date = local.date()
            today = self.exceptions.get(date, self.shifts)
            yesterday = self.exceptions.get(date - ONE_DAY, self.shifts) if self.crossing else ()
        out = [s.partner for s in today if (minute >= s.start if s.crosses else s.start <= minute < s.end)]
        if self.crossing:
            out += [s.partner for s in yesterday if s.crosses and minute < s.end]
        return out


@dataclass(frozen=True, slots=True)
class _DayTable:
    """One plan on one JST date: from each minute mark on, each option's chain, the options offered (a partner on
    its own shift), and the options whose chain holds a partner who takes callers in other languages."""

    marks: list[int]
    chains: list[dict[str, tuple[Partner, ...]]]
    offered: list[frozenset[str]]
    abroad: list[frozenset[str]]
    shared: list[dict[str, int]]  # options with a `share` rule -> how many partners lead the chain on that shift


def takes_other_languages(partner: Partner) -> bool:
    """The partner takes a caller who does not speak Japanese: it speaks another language, or has an interpreter."""
    return partner.interpreter or any(lang != HOME for lang in partner.languages)


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
        self._counsellors = {c.id: c for c in spec.counsellors}
        self._urgent = {name: next((o for o, op in plan.items() if op.urgent), None)
                        for name, plan in spec.plans.items()}
        self._abroad = frozenset(p.id for p in spec.partners if takes_other_languages(p))
        self._marks = sorted(self.boundaries())
        # Chains change only at shift and hours boundaries: each (plan, date) is worked out once, then looked up.
        self._day = functools.lru_cache(maxsize=4096)(self._day_table)

    # -- windows ------------------------------------------------------------------------------------------------
    def window_at(self, instant: dt.datetime) -> Campaign | None:
        """The campaign whose half-open window [opens, closes) holds the instant."""
        i = bisect.bisect_right(self._opens, instant.timestamp()) - 1
        if i >= 0 and instant < self.campaigns[i].closes:
            return self.campaigns[i]
        return None

    def next_window(self, instant: dt.datetime) -> Campaign | None:
        """The next campaign to open after the instant: what a caller on a closed line is told."""
        i = bisect.bisect_right(self._opens, instant.timestamp())
        return self.campaigns[i] if i < len(self.campaigns) else None

    # -- who answers --------------------------------------------------------------------------------------------
    def _available(self, partner: Partner, local: dt.datetime) -> bool:
        return self._partner_hours[partner.id].open_at(local)

    def _day_table(self, plan_name: str, date: dt.date) -> _DayTable:
        plan = self.plans[plan_name]
        midnight = dt.datetime(date.year, date.month, date.day, tzinfo=JST)
        chains, offered, abroad, shared = [], [], [], []
        for m in self._marks:
            local = midnight + dt.timedelta(minutes=m)
            here = {opt: self._chain_at(plan, opt, local) for opt in plan}
            staffed = {opt: op.staffed(local) for opt, op in plan.items()}
            chains.append(here)
            shared.append({opt: self._shift_size(here[opt], staffed[opt])
                           for opt, op in plan.items() if op.share is not None})
            offered.append(frozenset(opt for opt in plan if any(self._available(p, local) for p in staffed[opt])))
            abroad.append(frozenset(opt for opt, chain in here.items() if any(p.id in self._abroad for p in chain)))
        return _DayTable(self._marks, chains, offered, abroad, shared)

    @staticmethod
    def _shift_size(chain: tuple[Partner, ...], staffed: list[Partner]) -> int:
        """How many partners at the head of the chain are on the option's own shift (those that share it)."""
        on = {p.id for p in staffed}
        size = 0
        while size < len(chain) and chain[size].id in on:
            size += 1
        return size

    def shared_shift(self, instant: dt.datetime, option: str,
                     campaign: Campaign | None = None) -> tuple[tuple[Partner, ...], str | None]:
        """The partners sharing the option's shift now and the plan's `share` rule; ((), None) when none share."""
        campaign = campaign or self.window_at(instant)
        if campaign is None:
            return (), None
        plan = self.plans[campaign.plan]
        option = option if option in plan else self.general
        table, i = self._slot(campaign, instant)
        size = table.shared[i].get(option, 0)
        if size < 2:
            return (), None
        return table.chains[i][option][:size], plan[option].share

    def _slot(self, campaign: Campaign, instant: dt.datetime) -> tuple[_DayTable, int]:
        local = instant.astimezone(JST)
        table = self._day(campaign.plan, local.date())
        return table, bisect.bisect_right(table.marks, local.hour * 60 + local.minute) - 1

    def offered(self, instant: dt.datetime, language_option: str | None = None) -> frozenset[str]:
        """Options with a partner on shift right now: the ones the menu speaks. Empty outside every window.
        `language_option` (the menu's choose-language option) is also offered while its chain holds a partner who
        takes callers in other languages (one who speaks them, or an interpreter-backed one)."""
        campaign = self.window_at(instant)
        if campaign is None:
            return frozenset()
        table, i = self._slot(campaign, instant)
        offered = table.offered[i]
        if language_option is not None and language_option not in offered and language_option in table.abroad[i]:
            return offered | {language_option}
        return offered

    def urgent_option(self, instant: dt.datetime) -> str | None:
        """The option of the open campaign's plan marked urgent (the first, if several); None when none is, or
        outside every window."""
        campaign = self.window_at(instant)
        return self._urgent.get(campaign.plan) if campaign is not None else None

    def option_urgent(self, instant: dt.datetime, option: str) -> bool:
        """The open campaign's plan marks this option urgent: its callers are on the urgent lane wherever they are
        put through (the general line too, when the option is closed or not staffed)."""
        campaign = self.window_at(instant)
        spec = self.spec.plans[campaign.plan].get(option) if campaign is not None else None
        return spec is not None and spec.urgent

    def chain(self, instant: dt.datetime, option: str, campaign: Campaign | None = None) -> tuple[Partner, ...]:
        """Partners to try in order: the option's shift, its overflow (options expanded), then the general line."""
        campaign = campaign or self.window_at(instant)
        if campaign is None:
            return ()
        table, i = self._slot(campaign, instant)
        chains = table.chains[i]
        return chains[option] if option in chains else chains[self.general]

    def _chain_at(self, plan: dict[str, _Plan], option: str, local: dt.datetime) -> tuple[Partner, ...]:
        out: list[Partner] = []
        taken: set[str] = set()  # partner ids: comparing the models themselves is slow
        expanded: set[str] = set()

        def add(p: Partner) -> None:
            if p.id not in taken and self._available(p, local):
                taken.add(p.id)
                out.append(p)

        def expand(opt: str) -> None:
            if opt in expanded or opt not in plan:
                return
            expanded.add(opt)
            for p in plan[opt].staffed(local):
                add(p)
            for item in plan[opt].overflow:
                if isinstance(item, str):
                    expand(item)
                else:
                    add(item)

        expand(option)
        expand(self.general)
        return tuple(out)

    def open_referrals(self, instant: dt.datetime, option: str, limit: int = 2,
                       campaign: Campaign | None = None, language: str = HOME) -> tuple[Referral, ...]:
        """Phone lines open at this instant for the option (for a caller in another language, lines that serve it
        first): its referral set, else lines that suit it, else lines that suit every option. Never a chat or mail
        line: callers are told numbers here."""
        return self._pick(instant, option, campaign, language, limit, online=False)

    def online_referrals(self, instant: dt.datetime, option: str, campaign: Campaign | None = None,
                         language: str = HOME, limit: int = 2) -> tuple[Referral, ...]:
        """Chat and mail lines open at this instant that suit the option or every option, inside a window or not:
        those in its referral set in the campaign (default: the window open at the instant) first, and for a caller
        in another language, those that serve it before them."""
        return self._pick(instant, option, campaign or self.window_at(instant), language, limit, online=True)

    def _pick(self, instant: dt.datetime, option: str, campaign: Campaign | None, language: str, limit: int,
              *, online: bool) -> tuple[Referral, ...]:
        local = instant.astimezone(JST)
        plan = self.plans[campaign.plan].get(option) if campaign else None
        lines = [x for x in self._lines if x.online == online]
        fitting = [x for x in lines if option in x.suits or x.suits_all]
        speaks = [x for x in (fitting if online else lines)
                  if language in x.referral.languages or "any" in x.referral.languages]
        own = [x for x in (plan.referrals if plan else ()) if x.online == online]
        tiers = (speaks if language != HOME else [], own, [x for x in lines if option in x.suits],
                 [x for x in lines if x.suits_all])
        picked: list[_Line] = []
        for tier in tiers:
            picked += [x for x in tier if x not in picked and x.hours.open_at(local)]
        return tuple(x.referral for x in picked[:limit])

    def decide(self, instant: dt.datetime, option: str, step: int = 0, language: str = HOME,
               urgent: bool = False, live: Live = NO_LIVE) -> Decision:
        """Step `step` of the option's chain at this instant for a caller speaking `language`; past the chain,
        the phone lines open now. `urgent` (a caller in crisis) puts the call on the urgent lane, as an urgent
        option does: the partner's -urgent queue, taken first. `live`: what operators and the store say now (a
        closed option goes to the general line, on the urgent lane if the option is urgent; paused partners are
        stepped over, so the step returned may be later; partners sharing a shift are ordered by the plan's `share`
        rule)."""
        campaign = self.window_at(instant)
        if campaign is None:
            option = option if any(option in p for p in self.plans.values()) else self.general
            return Decision("closed", option, step, next_campaign=self.next_window(instant),
                            referrals=self.open_referrals(instant, option, language=language), urgent=urgent)
        ops = self.spec.plans[campaign.plan]
        urgent = urgent or (option in ops and ops[option].urgent)  # a closed urgent option keeps its lane
        if option not in ops or (option in live.closed and option != self.general):
            option = self.general
        urgent = urgent or ops[option].urgent
        table, i = self._slot(campaign, instant)  # the option is one of the plan's here: its chain and shift
        chain, first = shared_order(table.chains[i][option], table.shared[i].get(option, 0),
                                    self.plans[campaign.plan][option].share, live)
        if language != HOME:  # partners who speak it, then interpreter-backed ones; never a Japanese-only line
            chain = tuple(p for p in chain if language in p.languages) + tuple(
                p for p in chain if p.interpreter and language not in p.languages)
        while 0 <= step < len(chain) and chain[step].id in live.paused:
            step += 1
        if 0 <= step < len(chain):
            partner = chain[step]
            return Decision(partner.kind, option, step, partner=partner, campaign=campaign, urgent=urgent,
                            interpreter=language != HOME and language not in partner.languages, first=first)
        return Decision("referrals", option, step, campaign=campaign, urgent=urgent,
                        referrals=self.open_referrals(instant, option, campaign=campaign, language=language))

    def counsellor(self, counsellor_id: str) -> Counsellor | None:
        """The counsellor with this id (as keyed on the phone); None for an id nobody has."""
        return self._counsellors.get(counsellor_id)

    def queues_of(self, partner_id: str) -> list[str]:
        """A queue partner's Twilio queues, the urgent lane first: a caller in crisis may be on it in any plan."""
        p = self.partners.get(partner_id)
        if p is None or p.kind != "queue":
            return []
        return [f"{p.contact}{URGENT}", p.contact]

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
