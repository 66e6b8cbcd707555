"""What a campaign report adds for the record: breakdowns by language and partner, charts drawn from the published
numbers, and a short summary (Markdown) a press officer can paste.

Every number here comes from a table suppressed as a whole (common/disclosure.py) or from the report's published
day x option table: a chart of published data never plots a count the tables hide. Calls per hour are drawn per
option and day only for the days whose count is published, in bins of whole hours inside that day, each holding at
least k calls (a quiet hour is merged with its neighbours), so the bins of a day add up to its published count and
say nothing about a hidden one.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import matplotlib.dates as mdates

from common import disclosure
from common.facts import DIAL_ANSWERED, JST, QUEUE_ANSWERED
from ivr.state.keys import key
from ivr.tools.charts import hourly_lines, rate_bars
from routing.model import Campaign

OUTCOMES = ("answered", "passed_on", "caller_hung_up")  # what became of a partner's offered calls
HUNG_UP = frozenset({"queue:hangup", "dial:canceled"})


class DayCounts(Protocol):
    """A campaign day's counts (ivr.tools.report.Day)."""

    date: dt.date

    def n(self, name: str) -> int:
        """One of the day's counts."""
        ...


def read_partners(client: Any, campaign: Campaign, dates: Sequence[dt.date], partners: Sequence[str]) \
        -> dict[str, Counter[str]]:
    """Each partner's queue and dial outcomes over the campaign (`ivr:agg:<campaign>:<day>:<partner>`)."""
    pipe = client.pipeline(transaction=False)
    order = [(p, d) for p in [*partners, "none"] for d in dates]
    for p, d in order:
        pipe.hgetall(key("agg", f"{campaign.id}:{d.isoformat()}:{p}"))
    out: dict[str, Counter[str]] = {}
    for (p, _), raw in zip(order, pipe.execute(), strict=True):
        out.setdefault(p, Counter()).update(
            {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()})
    return {p: c for p, c in out.items() if p != "none" or c.total()}


def partner_outcome(counter: str) -> str | None:
    """Which of OUTCOMES a partner's counter ('queue:bridged', 'dial:busy', ...) counts; None for a wait bucket."""
    kind, _, result = counter.partition(":")
    if kind not in ("queue", "dial"):
        return None
    if result in (QUEUE_ANSWERED if kind == "queue" else DIAL_ANSWERED):
        return "answered"
    return "caller_hung_up" if counter in HUNG_UP else "passed_on"


def partner_table(counts: dict[str, Counter[str]]) -> tuple[list[str], list[list[int]]]:
    """Partners (rows) by outcome (OUTCOMES): how the calls offered to each ended."""
    names, cells = [], []
    for p in sorted(counts):
        row = dict.fromkeys(OUTCOMES, 0)
        for counter, n in counts[p].items():
            outcome = partner_outcome(counter)
            if outcome:
                row[outcome] += n
        if any(row.values()):  # a partner offered no call this campaign is left out
            names.append(p)
            cells.append([row[o] for o in OUTCOMES])
    return names, cells


def language_table(days: Sequence[DayCounts]) -> tuple[list[str], list[list[int]]]:
    """Languages (rows) by answered / not answered, over the campaign (`lang|<code>` counters)."""
    calls: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    for day in days:
        for lang in {k.split("|")[1] for k in getattr(day, "counts", {}) if k.startswith("lang|")}:
            calls[lang] += day.n(f"lang|{lang}")
            answered[lang] += day.n(f"lang|{lang}|answered")
    names = sorted(calls, key=lambda c: (-calls[c], c))
    return names, [[answered[c], max(calls[c] - answered[c], 0)] for c in names]


def table_rows(label: str, names: list[str], columns: Sequence[str], cells: list[list[int]], publish: bool,
               main: Mapping[int, str] | None = None) -> list[list[str]]:
    """A breakdown as CSV rows, with its totals ("all"), published (suppressed) or exact; the header first. `main`:
    the report's own totals (calls, answered) as exact value -> published text; a total of the breakdown with the
    same value is the same number to a reader (`linked`)."""
    if publish:
        known, withheld = linked(disclosure.with_totals(cells), main or {})
        grid = disclosure.publish(cells, known=known, withheld=withheld)
    else:
        grid = disclosure.exact(cells)
    out = [[label, *columns, "all", "answered_share"]]
    for name, row in zip([*names, "all"], grid, strict=True):
        out.append([name, *row, disclosure.rate(row[0], row[-1])])
    return out


def linked(grid: list[list[int]], main: Mapping[int, str]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Which totals of a breakdown (its last row, with margins) the main report publishes too: those equal to one of
    its totals. (known: the main report shows the number, so a reader has it; withheld: the main report hides it, so
    the breakdown hides it too.) Equal by chance is treated as the same number: that only hides more."""
    last = len(grid) - 1
    known = {(last, j) for j, v in enumerate(grid[last]) if v in main and main[v].isdigit()}
    withheld = {(last, j) for j, v in enumerate(grid[last]) if v in main and not main[v].isdigit()}
    return known, withheld


def day_bins(hours: list[tuple[dt.datetime, int]], k: int) -> list[tuple[dt.datetime, int, int]]:
    """A day's hours merged into bins of at least k calls: (start, hours, calls); a quiet end joins the bin before
    it. A day with fewer than k calls in all is one bin."""
    bins: list[list[Any]] = []
    for start, n in hours:
        if bins and bins[-1][2] < k:
            bins[-1][1] += 1
            bins[-1][2] += n
        else:
            bins.append([start, 1, n])
    if len(bins) > 1 and bins[-1][2] < k:
        last = bins.pop()
        bins[-1][1] += last[1]
        bins[-1][2] += last[2]
    return [(b[0], b[1], b[2]) for b in bins]


def hours_in(campaign: Campaign, date: dt.date) -> list[dt.datetime]:
    """The JST hours of a date that fall inside the campaign window."""
    out = []
    for hour in range(24):
        t = dt.datetime(date.year, date.month, date.day, hour, tzinfo=JST)
        if campaign.opens < t + dt.timedelta(hours=1) and t < campaign.closes:
            out.append(t)
    return out


def hourly_chart(path: Path, campaign: Campaign, days: Sequence[DayCounts], options: list[str],
                 published: dict[tuple[str, str], str], k: int = disclosure.K) -> Path:
    """Calls per hour by option, from the published numbers: only days whose count is published, in bins of at
    least k calls, each drawn at its average per hour."""
    lines: dict[str, tuple[list[float], list[float]]] = {}
    for option in options:
        xs, ys = lines[option] = ([], [])
        for day in days:
            if not published.get((day.date.isoformat(), option), "").isdigit():
                xs.append(float(mdates.date2num(dt.datetime(day.date.year, day.date.month, day.date.day))))
                ys.append(float("nan"))  # a hidden day: a gap, never a number
                continue
            hours = [(t, day.n(f"calls|{option}|h{t.hour:02d}")) for t in hours_in(campaign, day.date)]
            for start, width, n in day_bins(hours, k):
                for edge in (start, start + dt.timedelta(hours=width)):
                    xs.append(float(mdates.date2num(edge.replace(tzinfo=None))))
                    ys.append(n / width)
    return hourly_lines(path, lines, f"{campaign.id}: calls per hour by option (JST), published: bins of at least "
                        f"{k} calls", "calls per hour")


def answer_chart(path: Path, campaign: Campaign, daily: list[tuple[str, str, str]]) -> Path:
    """The share of calls answered each day, from the published day totals (date, calls, answered); a day whose
    totals are not both published has no bar."""
    labels = [date[5:] for date, _, _ in daily]
    rates = [float(r) if (r := disclosure.rate(answered, calls)) else 0.0 for _, calls, answered in daily]
    return rate_bars(path, labels, rates, f"{campaign.id}: answer rate per day (answered / calls), published")


def busiest_hours(days: Sequence[DayCounts], options: list[str], k: int = disclosure.K, top: int = 3) \
        -> list[tuple[int, int]]:
    """The hours of the day (JST) with the most calls over the campaign, (hour, calls), only hours of k or more."""
    per_hour = Counter({h: sum(d.n(f"calls|{o}|h{h:02d}") for d in days for o in [*options, "none"])
                        for h in range(24)})
    return [(h, n) for h, n in per_hour.most_common(top) if n >= k]


def markdown_table(rows: list[list[str]], rename: Callable[[str], str] = str) -> list[str]:
    """CSV-like rows (header first) as a Markdown table."""
    head, *body = rows
    lines = ["| " + " | ".join(c.replace("_", " ") for c in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([rename(r[0]), *r[1:]]) + " |" for r in body]
    return lines


def summary(path: Path, campaign: Campaign, report_rows: list[list[str]], options: list[str],
            busiest: list[tuple[int, int]], languages: list[list[str]], partners: list[list[str]],
            charts: list[Path], partner_names: dict[str, str]) -> Path:
    """The summary for the record, in Markdown, from the published numbers only."""
    total = {r[1]: r for r in report_rows if r[0] == "total"}
    calls, answered = total["all"][2], total["all"][3]
    opens, closes = (t.astimezone(JST) for t in (campaign.opens, campaign.closes))
    share = disclosure.rate(answered, calls)
    by_option = [["option", "calls", "answered", "answered_share"]] + [
        [o, total[o][2], total[o][3], total[o][4]] for o in [*options, "none"] if o in total
        and (o != "none" or total[o][2] != "0")]
    text = [f"# #9999 {campaign.id}: {opens:%Y-%m-%d %H:%M} to {closes:%Y-%m-%d %H:%M} JST", "",
            f"- Calls: {calls}", f"- Answered: {answered}" + (f" ({float(share):.0%} of calls)" if share else ""),
            "- Busiest hours (JST, all days): " + (", ".join(f"{h:02d}:00-{h + 1:02d}:00 ({n} calls)"
                                                             for h, n in busiest) or "not published"), "",
            "## By option", "", *markdown_table(by_option), "",
            "## By language", "", *markdown_table(languages), ""]
    if len(partners) > 1:
        text += ["## By partner (calls offered to each, and how they ended)", "",
                 *markdown_table(partners, lambda p: partner_names.get(p, p)), ""]
    text += ["## Charts", "", *(f"![{c.stem}]({c.name})" for c in charts), "",
             f'Counts under {disclosure.K} are shown as "<{disclosure.K}"; "x" marks a count withheld so that a small '
             "one cannot be worked out from the totals. Shares are given only where both counts are shown. `none`: "
             "calls that ended before an option was chosen.", ""]
    path.write_text("\n".join(text), encoding="utf-8")
    return path
