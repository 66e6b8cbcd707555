"""`ivr staffing`: how many counsellors each hour of the next campaign needs, option by option, against the places
the partners on shift have configured, from the last campaign's counts, by Erlang C (common/erlang.py).

- Arrivals: the past campaign's calls per option and JST hour, taken from the day in the same place of its window
  when it is the same kind of day (a working day, or a weekend, public holiday or 12/29-1/3 closing day, by the
  `holidays` package's Japanese calendar), else the mean of the past window's days of that kind at that hour; times
  `--scale` for an expected rise. Calls for an option nobody staffs at that hour go to the general line, as callers
  do. Without past counts, `--arrivals-per-hour` (each option, or `option=n,...`).
- Handling time: the past campaign's talk seconds over calls that talked, per option and hour when 5 or more
  talked then, else per option, else for the whole line, else `--aht`.
- Seats: the fewest counsellors answering `--target` of callers within `--answer-within`, for that traffic.
- Capacity: the `capacity` of the partners on the option's own shift then. A partner on shift for several options,
  or sharing a shift (by weight), is checked once against all the traffic it takes: the hour is short when that
  partner's places are fewer than the seats Erlang C asks for its pooled traffic, or when nobody is on shift.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import holidays
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from common.erlang import seats_needed, traffic_of
from common.facts import JST
from ivr.tools.published import DayCounts, hours_in
from ivr.tools.report import days_of
from routing import Routing
from routing.model import Campaign, Partner

MIN_TALKED = 5  # calls that talked, at the least, for an hour's own average handling time
SHORT = "#d62728"
COLUMNS = ("hour_jst", "option", "arrivals", "aht_s", "aht_from", "erlangs", "seats_needed", "on_shift", "capacity",
           "short")


@dataclass(frozen=True)
class Need:
    """One option in one hour of the next window: expected calls, handling time, seats needed, places on shift."""

    hour: dt.datetime
    option: str
    arrivals: float
    aht: float
    aht_from: str  # hour, option, line, given
    seats: int
    on_shift: tuple[str, ...]
    capacity: int | None  # None: a partner on shift has no cap configured
    short: bool

    def row(self) -> list[str]:
        """The need as a CSV row."""
        return [f"{self.hour:%Y-%m-%d %H:00}", self.option, f"{self.arrivals:.2f}", f"{self.aht:.0f}", self.aht_from,
                f"{traffic_of(self.arrivals, self.aht):.2f}", str(self.seats), " ".join(self.on_shift),
                "" if self.capacity is None else str(self.capacity), "yes" if self.short else ""]


@functools.cache
def japanese_holidays(year: int) -> holidays.HolidayBase:
    """Japan's public holidays of a year."""
    return holidays.country_holidays("JP", years=year)


def day_kind(date: dt.date) -> str:
    """'off' for a weekend, a public holiday or a government closing day (12/29 to 1/3), else 'work'."""
    closing = (date.month == 12 and date.day >= 29) or (date.month == 1 and date.day <= 3)
    return "off" if date.weekday() >= 5 or closing or date in japanese_holidays(date.year) else "work"


class Past:
    """The past campaign's counts as the plan reads them: calls per option and hour, and talk time."""

    def __init__(self, campaign: Campaign, days: Sequence[DayCounts]):
        self.campaign = campaign
        self.days = list(days)
        self.by_date = {d.date: d for d in self.days}
        self.first = days_of(campaign)[0]
        self.open = {(d.date, t.hour) for d in self.days for t in hours_in(campaign, d.date)}
        self.calls = sum(d.n("calls") for d in self.days)

    def slots(self, date: dt.date, index: int, hour: int) -> list[tuple[dt.date, int]]:
        """The past (date, hour)s an hour of the next window is read from: the same place in the window on the
        same kind of day, else every past day of that kind at that hour, else every past day at that hour."""
        same = self.first + dt.timedelta(days=index)
        if (same, hour) in self.open and day_kind(same) == day_kind(date):
            return [(same, hour)]
        kind = [(d, h) for d, h in sorted(self.open) if h == hour and day_kind(d) == day_kind(date)]
        return kind or [(d, h) for d, h in sorted(self.open) if h == hour] or sorted(self.open)

    def arrivals(self, option: str, slots: list[tuple[dt.date, int]]) -> float:
        """Mean calls per hour for an option over these past hours."""
        return sum(self.by_date[d].n(f"calls|{option}|h{h:02d}") for d, h in slots) / len(slots) if slots else 0.0

    def talk(self, options: Sequence[str], hours: Sequence[int]) -> tuple[int, int]:
        """(talk seconds, calls that talked) over the campaign for these options and hours."""
        seconds = sum(d.n(f"talk|{o}|h{h:02d}") for d in self.days for o in options for h in hours)
        talked = sum(d.n(f"talked|{o}|h{h:02d}") for d in self.days for o in options for h in hours)
        return seconds, talked

    def aht(self, option: str, hour: int, options: Sequence[str], given: float) -> tuple[float, str]:
        """Average handling seconds for an option at an hour, and where it came from."""
        for scope, opts, hrs in (("hour", [option], [hour]), ("option", [option], range(24)),
                                 ("line", options, range(24))):
            seconds, talked = self.talk(opts, list(hrs))
            if talked >= MIN_TALKED or (scope == "line" and talked):
                return seconds / talked, scope
        return given, "given"


def on_shift(routing: Routing, campaign: Campaign, option: str, hour: dt.datetime) -> list[Partner]:
    """The partners who take the option's callers at this hour: those on its own shift and within their own hours,
    else the first of its chain (the foreign-language line kept open by an interpreter on the general line)."""
    at = max(hour, campaign.opens)  # the first hour of a window opening at 10:30 is read at 10:30
    chain = routing.chain(at, option, campaign)
    ids = {p.id for p in chain}
    own = [p for p in routing.plans[campaign.plan][option].staffed(at.astimezone(JST)) if p.id in ids]
    return own or list(chain[:1])


def plan(routing: Routing, campaign: Campaign, options: list[str], past: Past | None, *, given: dict[str, float],
         scale: float, aht: float, within: float, target: float, language_option: str | None) -> list[Need]:
    """The seats each hour of the next campaign needs, option by option, and whether the partners on shift have
    the places for them."""
    first = days_of(campaign)[0]
    out: list[Need] = []
    for date in days_of(campaign):
        for hour in hours_in(campaign, date):
            offered = routing.offered(max(hour, campaign.opens), language_option)
            load: dict[str, tuple[float, float, str]] = {}
            for o in options:
                if past is not None:
                    lam = past.arrivals(o, past.slots(date, (date - first).days, hour.hour)) * scale
                    handling, source = past.aht(o, hour.hour, options, aht)
                else:
                    lam, handling, source = given.get(o, given.get("*", 0.0)), aht, "given"
                target_option = o if o in offered else routing.general
                before, before_aht, before_source = load.get(target_option, (0.0, handling, source))
                pooled = before + lam
                mixed = (before * before_aht + lam * handling) / pooled if pooled else handling
                load[target_option] = (pooled, mixed, source if target_option == o else before_source)
            out += _hour(routing, campaign, [o for o in options if o in offered], options, hour, load, within,
                         target)
    return out


def _hour(routing: Routing, campaign: Campaign, offered: list[str], options: list[str], hour: dt.datetime,
          load: dict[str, tuple[float, float, str]], within: float, target: float) -> list[Need]:
    """One hour's needs, with each partner on shift checked once against all the traffic it takes (an option not
    offered then has none: its callers are in the general line's load)."""
    shifts = {o: on_shift(routing, campaign, o, hour) if o in offered else [] for o in options}
    taken: dict[str, tuple[float, float]] = {}  # partner -> (calls, talk seconds) it takes this hour
    for o, partners in shifts.items():
        lam, handling, _ = load.get(o, (0.0, 0.0, ""))
        shared = routing.plans[campaign.plan][o].share is not None if o in routing.plans[campaign.plan] else False
        for p, share in spread(partners, lam, handling, within, target, shared):
            calls, seconds = taken.get(p.id, (0.0, 0.0))
            taken[p.id] = (calls + share, seconds + share * handling)
    over = {pid for pid, (calls, seconds) in taken.items()
            if routing.partners[pid].capacity is not None and calls
            and seats_needed(calls, seconds / calls, within, target) > (routing.partners[pid].capacity or 0)}
    out = []
    for o in options:
        lam, handling, source = load.get(o, (0.0, 0.0, ""))
        partners = shifts[o]
        caps = [p.capacity for p in partners]
        capacity = None if any(c is None for c in caps) else sum(c or 0 for c in caps)
        seats = seats_needed(lam, handling, within, target) if lam else 0
        short = bool(seats) and (not partners or any(p.id in over for p in partners))
        out.append(Need(hour, o, lam, handling, source if lam else "", seats, tuple(p.id for p in partners),
                        capacity, short))
    return out


def spread(partners: list[Partner], lam: float, handling: float, within: float, target: float, shared: bool) \
        -> list[tuple[Partner, float]]:
    """How an option's calls in an hour fall to its partners on shift: by weight where its plan shares the shift;
    else in shift order, as the calls are routed: each takes what its places answer on target (the first all of
    them while it can), the rest pass to the next, and the last (or one without a cap) takes all that is left."""
    if not partners:
        return []
    if shared:
        weights = sum(p.weight for p in partners)
        return [(p, lam * p.weight / weights) for p in partners]
    out, rest = [], lam
    for n, p in enumerate(partners):
        last = n == len(partners) - 1 or p.capacity is None
        take = rest if last else min(rest, answerable(p.capacity or 0, handling, within, target))
        out.append((p, take))
        rest -= take
        if last:
            break
    return out


def answerable(places: int, handling: float, within: float, target: float) -> float:
    """The most calls per hour `places` counsellors answer on target (Erlang C, by bisection)."""
    if places <= 0 or handling <= 0:
        return 0.0
    lo, hi = 0.0, places * 3600 / handling  # at `places` Erlangs of traffic no number of calls is answered on target
    for _ in range(40):
        mid = (lo + hi) / 2
        try:
            fits = seats_needed(mid, handling, within, target) <= places
        except ValueError:
            fits = False
        lo, hi = (mid, hi) if fits else (lo, mid)
    return lo


def table_lines(needs: list[Need], options: list[str]) -> list[str]:
    """The plan for a terminal: a line per hour, 'seats/places' per option, '!' where the hour is short."""
    width = max(9, *(len(o) + 1 for o in options))
    lines = ["hour (JST)        " + "".join(f"{o:>{width}}" for o in options)]
    by_hour: dict[dt.datetime, dict[str, Need]] = {}
    for n in needs:
        by_hour.setdefault(n.hour, {})[n.option] = n
    for hour, row in by_hour.items():
        cells = []
        for o in options:
            n = row[o]
            cap = "-" if n.capacity is None else str(n.capacity)
            cells.append(f"{n.seats}/{cap}{'!' if n.short else ' '}".rjust(width))
        lines.append(f"{hour:%Y-%m-%d %H:00}  " + "".join(cells))
    return lines


def write_csv(path: Path, needs: list[Need]) -> Path:
    """The plan as CSV, a row per hour and option."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(n.row() for n in needs)
    return path


def heatmap(path: Path, campaign: Campaign, needs: list[Need], options: list[str], title: str) -> Path:
    """Seats needed per hour (x) and option (y), shades of blue; hours the partners on shift cannot cover in red (the
    title says so)."""
    hours = sorted({n.hour for n in needs})
    col = {h: i for i, h in enumerate(hours)}
    seats = np.zeros((len(options), len(hours)))
    fig = Figure(figsize=(min(4 + 0.08 * len(hours), 18), 1.4 + 0.35 * len(options)), dpi=90)
    ax = fig.subplots()
    for n in needs:
        seats[options.index(n.option), col[n.hour]] = n.seats
    image = ax.imshow(seats, aspect="auto", cmap=ListedColormap([(0.97, 0.98, 1.0), *(
        (0.85 - 0.07 * i, 0.9 - 0.06 * i, 1.0 - 0.03 * i) for i in range(12))]), interpolation="nearest")
    for n in needs:
        if n.short:
            ax.add_patch(Rectangle((col[n.hour] - 0.5, options.index(n.option) - 0.5), 1, 1, facecolor=SHORT,
                                   edgecolor="white", linewidth=0.3))
    ax.set_yticks(range(len(options)), options)
    ticks = [i for i, h in enumerate(hours) if h.hour in (0, 12)]
    ax.set_xticks(ticks, [f"{hours[i]:%m-%d %H:00}" for i in ticks], rotation=45, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label="seats needed", fraction=0.025, pad=0.01)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
