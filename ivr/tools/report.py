"""Campaign reports from the anonymized counts: a CSV per day and option, breakdowns by language and partner, and
two charts; published, also a summary for the record (ivr/tools/published.py).

Answer rate is answered calls over all calls for that option. Waits are the queue-wait buckets (an upper bound:
"≤60" means the median caller waited a minute or less). `publish` shows every count under 5 as "<5" and hides as
"x" the next-smallest counts of the same day and option, so that no small count can be worked out from a total by
subtraction (common/disclosure.py); rates and waits are shown only beside published counts, and the charts are drawn
from the published numbers. Without `publish` every number is exact, for the operators.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.dates as mdates
from tqdm import tqdm

from common import disclosure
from common.facts import JST
from ivr.state import callers
from ivr.state.jobs import WAIT_BUCKETS
from ivr.state.keys import key
from ivr.tools import published
from ivr.tools.charts import hourly_lines, rate_bars
from routing.model import Campaign

SMALL = disclosure.K
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


MEASURES = ("calls", "answered", "abandoned", "overflowed", "referrals")  # the day x option tables, with totals
NONE = "none"  # calls that ended before an option was chosen (and any option the plan no longer lists)


def matrix(days: list[Day], options: list[str], measure: str) -> list[list[int]]:
    """One measure as a table: a row per day, a column per option and one for `none`, so each row adds up to the
    day's total (for calls: every call of the day, an option chosen or not)."""
    out = []
    for day in days:
        row = [day.n(f"{measure}|{o}") for o in options]
        rest = day.n("calls") - sum(row) if measure == "calls" else day.n(f"{measure}|{NONE}")
        out.append([*row, max(rest, 0)])
    return out


def rows(days: Iterable[Day], options: list[str], publish: bool = False) -> list[list[str]]:
    """The report table: a row per day and option (and `none`), one for the day ("all"), and a `total` row per option
    over the campaign. `publish` suppresses small counts and what would give them away (common/disclosure.py)."""
    days = list(days)
    columns = [*options, NONE, "all"]
    grids = {m: (disclosure.publish if publish else disclosure.exact)(matrix(days, options, m)) for m in MEASURES}
    out = []
    for i, label in enumerate([*(d.isoformat() for d in (day.date for day in days)), "total"]):
        day = days[i] if i < len(days) else None
        for j, option in enumerate(columns):
            calls, answered, abandoned, overflowed, referred = (grids[m][i][j] for m in MEASURES)
            median = p90 = ""
            if day is not None and option not in ("all", NONE) and calls.isdigit() and int(calls) >= SMALL:
                median, p90 = wait_quantile(day, option, 0.5), wait_quantile(day, option, 0.9)
            extra = ["", "", ""]
            if day is not None and option == "all":
                extra = [count(n, publish) for n in (day.unique, day.withheld, day.n("closed"))]
            out.append([label, option, calls, answered, disclosure.rate(answered, calls), abandoned, overflowed,
                        referred, median, p90, *extra])
    return out


def count(n: int, publish: bool) -> str:
    """A count standing alone (no total it adds up to): "<5" when published and small."""
    return f"<{SMALL}" if publish and 0 < n < SMALL else str(n)


def write(out_dir: Path, campaign: Campaign, days: list[Day], options: list[str], publish: bool,
          partners: dict[str, Counter[str]] | None = None, partner_names: dict[str, str] | None = None) -> list[Path]:
    """Write a campaign's report into `out_dir`: the CSV per day and option, the breakdowns by language and partner,
    both charts, and with `publish` the summary for the record; returns the files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "-published" if publish else ""
    table = rows(days, options, publish)
    files = [csv_file(out_dir / f"report-{campaign.id}{suffix}.csv", [list(COLUMNS), *table])]
    main: dict[int, str] = {}  # the report's totals (exact -> published): a breakdown's total equal to one is linked
    for measure, text in zip(("calls", "answered"), next(r for r in table if r[:2] == ["total", "all"])[2:4],
                             strict=True):
        value = disclosure.with_totals(matrix(days, options, measure))[-1][-1]
        main[value] = text if text.isdigit() or value not in main else main[value]
    langs = published.table_rows("language", *_named(published.language_table(days)), publish, main)
    by_partner = published.table_rows("partner", *_named(published.partner_table(partners or {}),
                                                         published.OUTCOMES), publish, main)
    files += [csv_file(out_dir / f"by-language-{campaign.id}{suffix}.csv", langs),
              csv_file(out_dir / f"by-partner-{campaign.id}{suffix}.csv", by_partner)]
    hourly, answers = (out_dir / f"{name}-{campaign.id}{suffix}.png" for name in ("calls-per-hour", "answer-rate"))
    if not publish:
        return [*files, hourly_chart(hourly, campaign, days, options), answer_chart(answers, campaign, days, options)]
    shown = {(r[0], r[1]): r[2] for r in table}
    charts = [published.hourly_chart(hourly, campaign, days, options, shown),
              published.answer_chart(answers, campaign, [(r[0], r[2], r[3]) for r in table
                                                         if r[1] == "all" and r[0] != "total"])]
    record = published.summary(out_dir / f"summary-{campaign.id}.md", campaign, table, options,
                               published.busiest_hours(days, options), langs, by_partner, charts, partner_names or {})
    return [*files, *charts, record]


def _named(table: tuple[list[str], list[list[int]]], columns: tuple[str, ...] = ("answered", "not_answered")) \
        -> tuple[list[str], tuple[str, ...], list[list[int]]]:
    names, cells = table
    return names, columns, cells


def csv_file(path: Path, lines: list[list[str]]) -> Path:
    """Write rows (header first) to a CSV file."""
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(lines)
    return path


def hourly_chart(path: Path, campaign: Campaign, days: list[Day], options: list[str]) -> Path:
    """Chart calls per hour for each option over the campaign, for an operator to see when people call."""
    lines: dict[str, tuple[list[float], list[float]]] = {}
    for option in options:
        xs, ys = lines[option] = ([], [])
        for day in days:
            for t in published.hours_in(campaign, day.date):
                xs.append(float(mdates.date2num(t.replace(tzinfo=None))))
                ys.append(day.n(f"calls|{option}|h{t.hour:02d}"))
    return hourly_lines(path, lines, f"{campaign.id}: calls per hour by option (JST)", "calls")


def answer_chart(path: Path, campaign: Campaign, days: list[Day], options: list[str]) -> Path:
    """Chart the share of calls answered on each day of the campaign."""
    labels = [d.date.strftime("%m-%d") for d in days]
    rates = [(sum(d.n(f"answered|{o}") for o in options) / d.n("calls")) if d.n("calls") else 0.0 for d in days]
    return rate_bars(path, labels, rates, f"{campaign.id}: answer rate per day (answered / calls)")
