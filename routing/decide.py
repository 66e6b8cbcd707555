"""Who answers, when: pure functions of (routing config, instant, option, step). No clock reads, no I/O."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from routing.configfile import ConfigError, Problem, load_model, yaml_path
from routing.model import WEEKDAYS, Campaign, Partner, Referral, RoutingFile, minutes

JST = ZoneInfo("Asia/Tokyo")
DEFAULT_FILE = Path(__file__).with_name("routing.yaml")


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


class _CompiledReferral:
    __slots__ = ("closures", "referral", "rules", "suits", "suits_all")

    def __init__(self, r: Referral):
        self.referral = r
        self.suits_all = "all" in r.suits
        self.suits = frozenset(r.suits)
        self.closures = [(tuple(map(int, c.start.split("-"))), tuple(map(int, c.end.split("-")))) for c in r.closed]
        self.rules = [
            (
                frozenset(range(7)) if h.days == "daily" else frozenset(WEEKDAYS.index(d) for d in h.days),
                frozenset(h.monthdays) if h.monthdays else None,
                minutes(h.start),
                minutes(h.end),
            )
            for h in r.hours
        ]

    def open_at(self, local: dt.datetime) -> bool:
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


class Routing:
    """A validated routing file, compiled for fast decisions."""

    def __init__(self, spec: RoutingFile, source: str = "<memory>"):
        self.spec = spec
        self.source = source
        self.general = spec.general_option
        self.campaigns = tuple(sorted(spec.campaigns, key=lambda c: c.opens))
        self._opens = [c.opens.timestamp() for c in self.campaigns]
        self.partners = {p.id: p for p in spec.partners}
        self._chains: dict[str, tuple[Partner, ...]] = {}
        for option, ids in spec.chains.items():
            chain = [self.partners[i] for i in ids]
            if option != self.general:  # every option ends at the general line before the referrals
                chain += [p for p in (self.partners[i] for i in spec.chains[self.general]) if p not in chain]
            self._chains[option] = tuple(chain)
        self._referrals = tuple(_CompiledReferral(r) for r in spec.referrals)

    @property
    def options(self) -> frozenset[str]:
        return frozenset(self._chains)

    def window_at(self, instant: dt.datetime) -> Campaign | None:
        """The campaign whose half-open window [opens, closes) holds the instant."""
        i = bisect.bisect_right(self._opens, instant.timestamp()) - 1
        if i >= 0 and instant < self.campaigns[i].closes:
            return self.campaigns[i]
        return None

    def next_window(self, instant: dt.datetime) -> Campaign | None:
        i = bisect.bisect_right(self._opens, instant.timestamp())
        return self.campaigns[i] if i < len(self.campaigns) else None

    def chain(self, option: str) -> tuple[Partner, ...]:
        return self._chains.get(option) or self._chains[self.general]

    def open_referrals(self, instant: dt.datetime, option: str, limit: int = 2) -> tuple[Referral, ...]:
        """Lines open at this instant that suit the option, in config order (the most suitable first)."""
        local = instant.astimezone(JST)
        fit = [c for c in self._referrals if (option in c.suits) and c.open_at(local)]
        fit += [c for c in self._referrals if c.suits_all and c not in fit and c.open_at(local)]
        return tuple(c.referral for c in fit[:limit])

    def decide(self, instant: dt.datetime, option: str, step: int = 0) -> Decision:
        """Step `step` of the option's chain at this instant; past the chain, the referral lines open now."""
        option = option if option in self._chains else self.general
        campaign = self.window_at(instant)
        if campaign is None:
            return Decision(
                "closed", option, step,
                next_campaign=self.next_window(instant),
                referrals=self.open_referrals(instant, option),
            )
        chain = self.chain(option)
        if 0 <= step < len(chain):
            partner = chain[step]
            return Decision(partner.kind, option, step, partner=partner, campaign=campaign)
        return Decision("referrals", option, step, campaign=campaign, referrals=self.open_referrals(instant, option))

    def general_target(self) -> Partner:
        """The first partner of the general line: where a caller goes when nothing else can be decided."""
        return self._chains[self.general][0]


def _cross_check(spec: RoutingFile, file: str) -> list[Problem]:
    problems: list[Problem] = []
    ids = [p.id for p in spec.partners]
    for i, pid in enumerate(ids):
        if pid in ids[:i]:
            problems.append(Problem(file, yaml_path(("partners", i, "id")), f"duplicate partner id '{pid}'"))
    if spec.general_option not in spec.chains:
        problems.append(Problem(file, "chains", f"no chain for the general option '{spec.general_option}'"))
    for option, chain in spec.chains.items():
        for j, pid in enumerate(chain):
            if pid not in ids:
                problems.append(Problem(file, yaml_path(("chains", option, j)),
                                        f"unknown partner id '{pid}'; allowed: {', '.join(ids)}"))
    ordered = sorted(enumerate(spec.campaigns), key=lambda ic: ic[1].opens)
    for (_, a), (ib, b) in itertools.pairwise(ordered):
        if b.opens < a.closes:
            problems.append(Problem(file, yaml_path(("campaigns", ib, "opens")),
                                    f"window of '{b.id}' overlaps '{a.id}' (which closes {a.closes.isoformat()})"))
    return problems


def load_routing(path: Path = DEFAULT_FILE, option_ids: frozenset[str] | None = None) -> Routing:
    """Read and validate a routing file; with option_ids (from the menu), every option must have a chain."""
    spec = load_model(path, RoutingFile)
    problems = _cross_check(spec, str(path))
    if option_ids is not None:
        for option in sorted(option_ids - set(spec.chains)):
            problems.append(Problem(str(path), "chains", f"menu option '{option}' has no chain"))
        for option in sorted(set(spec.chains) - option_ids):
            problems.append(Problem(str(path), yaml_path(("chains", option)),
                                    f"not a menu option; allowed: {', '.join(sorted(option_ids))}"))
    if problems:
        raise ConfigError(problems)
    return Routing(spec, str(path))
