"""Provisional campaign windows for a year, proposed by the rule past windows followed, as YAML for review.

Golden Week: from 10:00 on the eve of the run of days off (weekends and national holidays) that contains 5/3, to
10:00 on the first workday after it (as in 2024 and 2025). New Year: the 12/29-1/3 closure of government offices,
widened over the weekends and holidays touching it, from 09:00 on the last workday before to 09:00 on the first
workday after (as in 2022-23). All instants are JST.

Pure: the year and the "checked" date are parameters; the calendar is the `holidays` package's Japanese national
and substitute holidays. The output is a proposal for a person to review and paste, never a confirmed window.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from holidays.countries.japan import Japan

from common.facts import JST

GW_TIME = dt.time(10, 0)
NEW_YEAR_TIME = dt.time(9, 0)

SOURCE = ("not announced; proposed by rule from the Japanese holiday calendar; "
          "must be replaced by the announced window")

_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Proposal:
    """One proposed window: half-open [opens, closes), aware datetimes in JST."""

    id: str
    name: str
    opens: dt.datetime
    closes: dt.datetime
    note: str


@functools.lru_cache(maxsize=32)
def _national_holidays(year: int) -> frozenset[dt.date]:
    first, last = Japan.start_year, Japan.end_year
    if not first <= year <= last:
        raise ValueError(f"no Japanese holiday calendar for {year}; supported years are {first}-{last}")
    return frozenset(Japan(years=year).keys())


def is_holiday(day: dt.date) -> bool:
    """A national or substitute holiday (including the 'national holiday' between two holidays)."""
    return day in _national_holidays(day.year)


def is_workday(day: dt.date) -> bool:
    """Monday to Friday and not a national holiday."""
    return day.weekday() < 5 and not is_holiday(day)


def _run(first: dt.date, last: dt.date, off: Callable[[dt.date], bool]) -> tuple[dt.date, dt.date]:
    """Widen [first, last] to the maximal run of consecutive days for which `off` holds."""
    while off(first - _ONE_DAY):
        first -= _ONE_DAY
    while off(last + _ONE_DAY):
        last += _ONE_DAY
    return first, last


def _at(day: dt.date, time: dt.time) -> dt.datetime:
    return dt.datetime.combine(day, time, tzinfo=JST)


def _md(day: dt.date) -> str:
    return f"{day.month}/{day.day}"


def propose_gw(year: int) -> Proposal:
    """Golden Week of `year`: 10:00 on the eve of the days off around 5/3 to 10:00 on the first workday after."""
    first, last = _run(dt.date(year, 5, 3), dt.date(year, 5, 3), lambda d: not is_workday(d))
    eve, back = first - _ONE_DAY, last + _ONE_DAY
    return Proposal(
        id=f"gw-{year}",
        name=f"ゴールデンウィーク {year}（仮）",
        opens=_at(eve, GW_TIME),
        closes=_at(back, GW_TIME),
        note=(f"PROVISIONAL. Days off {first.isoformat()} to {last.isoformat()}; opens 10:00 on the eve "
              f"({_md(eve)}), closes 10:00 on the first workday after ({_md(back)}), as in 2024 and 2025. "
              "Replace with the announced window as soon as it is published."),
    )


def propose_new_year(year: int) -> Proposal:
    """New Year from December of `year`: 09:00 on the workday before the widened 12/29-1/3 closure to 09:00 after."""
    closure_first, closure_last = dt.date(year, 12, 29), dt.date(year + 1, 1, 3)

    def off(day: dt.date) -> bool:
        return closure_first <= day <= closure_last or not is_workday(day)

    first, last = _run(closure_first, closure_last, off)
    eve, back = first - _ONE_DAY, last + _ONE_DAY
    return Proposal(
        id=f"newyear-{year}",
        name=f"年末年始 {year}-{(year + 1) % 100:02d}（仮）",
        opens=_at(eve, NEW_YEAR_TIME),
        closes=_at(back, NEW_YEAR_TIME),
        note=(f"PROVISIONAL. Offices closed 12/29-1/3, days off {first.isoformat()} to {last.isoformat()}; "
              f"opens 09:00 on the last workday before ({_md(eve)}), closes 09:00 on the first workday after "
              f"({_md(back)}), as in 2022-23. Some past windows opened earlier (2023-24 on 12/15, 2025-26 on "
              "12/25): the opening day needs a person's decision. "
              "Replace with the announced window as soon as it is published."),
    )


def propose(year: int) -> list[Proposal]:
    """The windows of `year` by rule: Golden Week, then the New Year starting that December."""
    return [propose_gw(year), propose_new_year(year)]


def _scalar(value: str) -> str:
    """`value` as a YAML scalar: plain when it reads back unchanged, otherwise double-quoted."""
    if value == value.strip() and "\n" not in value:
        try:
            if yaml.safe_load(f"k: {value}") == {"k": value}:
                return value
        except yaml.YAMLError:
            pass
    dumped: str = yaml.safe_dump(value, allow_unicode=True, default_style='"', width=10**6)
    return dumped.removesuffix("\n").removesuffix("...").rstrip("\n")


def render_yaml(proposals: list[Proposal], checked: dt.date) -> str:
    """Campaign entries for routing.yaml (status provisional), indented to paste under `campaigns:`."""
    lines = [
        "# PROVISIONAL campaign windows, proposed by rule from the Japanese holiday calendar; none is announced.",
        "# Review every date and time, then paste under `campaigns:` in routing/routing.yaml.",
        "# Replace each entry with the announced window as soon as it is published.",
    ]
    for p in proposals:
        lines += [
            f"  - id: {_scalar(p.id)}",
            f"    name: {_scalar(p.name)}",
            f"    opens: {p.opens.astimezone(JST).isoformat()}",
            f"    closes: {p.closes.astimezone(JST).isoformat()}",
            "    status: provisional",
            f"    source: {_scalar(SOURCE)}",
            f"    checked: {checked.isoformat()}",
            f"    note: {_scalar(p.note)}",
        ]
    return "\n".join(lines) + "\n"
