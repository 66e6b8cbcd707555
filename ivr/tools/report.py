"""Campaign reports from the anonymized counts: a CSV per day and option, and two charts.

Answer rate is answered calls over all calls for that option. Waits are the queue-wait buckets (an upper bound:
"≤60" means the median caller waited a minute or less). `publish` shows every count under 5 as "<5", and leaves
out rates and waits of groups that small, so no small group of callers can be singled out.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
from matplotlib.figure import Figure
from tqdm import tqdm

from common.facts import JST
from ivr.state import callers
from ivr.state.jobs import WAIT_BUCKETS
from ivr.state.keys import key
from routing.model import Campaign

SMALL = 5
COLUMNS = ("date", "option", "calls", "answered", "answer_rate", "abandoned", "overflowed", "referred",
           "wait_median_s", "wait_p90_s", "unique_callers", "withheld_calls", "closed_hours_calls")
BUCKETS = [*(f"le{b}" for b in WAIT_BUCKETS), f"gt{WAIT_BUCKETS[-1]}"]


@dataclass
class Day:
    """One campaign day's anonymized counts, with how many different callers and withheld numbers rang."""

    date: dt.date
    counts: dict[str, int] = field(default_factory=dict)
    unique: int = 0
    withheld: int = 0

    def n(self, name: str) -> int:
        """One of the day's counts, zero when nothing was counted."""
        return self.counts.get(name, 0)


def days_of(campaign: Campaign) -> list[dt.date]:
    """The days (JST) a campaign is open, from its first to its last."""
    first = campaign.opens.astimezone(JST).date()
    last = (campaign.closes - dt.timedelta(seconds=1)).astimezone(JST).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def read(client: Any, campaign: Campaign, progress: bool = True) -> list[Day]:
    """Read a campaign's daily counts from the store, for an operator's report. Unique callers are a finished day's
    folded count, plus the running estimate of a day not folded yet (no key is needed to read either). `ivr report`
    folds every ended day's HyperLogLog before it reads (ivr/tools/cli_files.py); reading itself changes nothing."""
    out = []
    for date in tqdm(days_of(campaign), desc=f"reading {campaign.id}", unit="day", disable=not progress):
        day = date.isoformat()
        raw = client.hgetall(key("agg", f"{campaign.id}:{day}"))
        counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
        pipe = client.pipeline(transaction=False)
        callers.read(pipe, day)
        out.append(Day(date, counts, *callers.unique(pipe.execute())))
    return out


def wait_quantile(day: Day, option: str, q: float) -> str:
    """The wait bucket within which `q` of an option's queued callers were answered (e.g. "≤60"), or ""."""
    counts = [day.n(f"wait|{option}|{b}") for b in BUCKETS]
    total = sum(counts)
    if total == 0:
        return ""
    running = 0
    for bucket, c in zip(BUCKETS, counts, strict=True):
        running += c
        if running >= q * total:
            return f"≤{bucket[2:]}" if bucket.startswith("le") else f">{bucket[2:]}"
    return ""


def rows(days: Iterable[Day], options: list[str], publish: bool = False) -> list[list[str]]:
    """The report table: a row per day and option, plus one for the whole line; `publish` hides small groups."""
    def count(n: int) -> str:
        return "<5" if publish and 0 < n < SMALL else str(n)

    def small(n: int) -> bool:
        return publish and n < SMALL

    out = []
    for day in days:
        for option in [*options, "all"]:
            if option == "all":
                names = options
                calls = day.n("calls")
                answered = sum(day.n(f"answered|{o}") for o in names)
                abandoned = sum(day.n(f"abandoned|{o}") for o in names)
                overflowed = sum(day.n(f"overflowed|{o}") for o in names)
                referred = sum(day.n(f"referrals|{o}") for o in names)
                median = p90 = ""
                extra = [count(day.unique), count(day.withheld), count(day.n("closed"))]
            else:
                calls = day.n(f"calls|{option}")
                answered, abandoned = day.n(f"answered|{option}"), day.n(f"abandoned|{option}")
                overflowed, referred = day.n(f"overflowed|{option}"), day.n(f"referrals|{option}")
                median, p90 = wait_quantile(day, option, 0.5), wait_quantile(day, option, 0.9)
                extra = ["", "", ""]
            rate = "" if calls == 0 or small(calls) else f"{answered / calls:.2f}"
            if small(calls):
                median = p90 = ""
            out.append([day.date.isoformat(), option, count(calls), count(answered), rate, count(abandoned),
                        count(overflowed), count(referred), median, p90, *extra])
    return out


def write(out_dir: Path, campaign: Campaign, days: list[Day], options: list[str], publish: bool) -> list[Path]:
    """Write an operator's report for a campaign, the CSV and both charts, into `out_dir`; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-published" if publish else ""
    table = out_dir / f"report-{campaign.id}{suffix}.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows(days, options, publish))
    return [table, hourly_chart(out_dir / f"calls-per-hour-{campaign.id}{suffix}.png", campaign, days, options),
            answer_chart(out_dir / f"answer-rate-{campaign.id}{suffix}.png", campaign, days, options)]


def hourly_chart(path: Path, campaign: Campaign, days: list[Day], options: list[str]) -> Path:
    """Chart calls per hour for each option over the campaign, for an operator to see when people call."""
    fig = Figure(figsize=(14, 4.5), dpi=110)
    ax = fig.subplots()
    for option in options:
        xs: list[float] = []
        ys: list[int] = []
        for day in days:
            for hour in range(24):
                t = dt.datetime(day.date.year, day.date.month, day.date.day, hour, tzinfo=JST)
                if campaign.opens <= t + dt.timedelta(hours=1) and t < campaign.closes:
                    xs.append(float(mdates.date2num(t.replace(tzinfo=None))))
                    ys.append(day.n(f"calls|{option}|h{hour:02d}"))
        if any(ys):
            ax.plot(xs, ys, label=option, linewidth=1.2)
    ax.set_title(f"{campaign.id}: calls per hour by option (JST)")
    ax.set_ylabel("calls")
    if ax.get_legend_handles_labels()[0]:  # a campaign with no calls yet has no line to name
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:00"))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    return path


def answer_chart(path: Path, campaign: Campaign, days: list[Day], options: list[str]) -> Path:
    """Chart the share of calls answered on each day of the campaign."""
    fig = Figure(figsize=(10, 4), dpi=110)
    ax = fig.subplots()
    labels = [d.date.strftime("%m-%d") for d in days]
    rates = [(sum(d.n(f"answered|{o}") for o in options) / d.n("calls")) if d.n("calls") else 0 for d in days]
    ax.bar(labels, rates, color="#2ca02c")
    ax.set_ylim(0, 1)
    ax.set_title(f"{campaign.id}: answer rate per day (answered / calls)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path
