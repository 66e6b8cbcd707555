"""Charts for people: the coverage of a campaign window, options by time, coloured by partner, gaps in red."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from common.facts import JST
from routing import Routing
from routing.preview import coverage

GAP = "#d62728"
PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#ff7f0e")


def hourly_lines(path: Path, lines: Mapping[str, tuple[list[float], list[float]]], title: str, ylabel: str) -> Path:
    """A line per option over the hours of a campaign (x: matplotlib dates in JST; y: calls, NaN for a gap), saved to
    `path`. An option with no call has no line; the legend names the lines when there are any (a campaign with no
    calls yet has none); a light grid, dates as month-day hour."""
    fig = Figure(figsize=(14, 4.5), dpi=110)
    ax = fig.subplots()
    for option, (xs, ys) in lines.items():
        if any(y == y and y > 0 for y in ys):  # NaN (a hidden day) is no call
            ax.plot(xs, ys, label=option, linewidth=1.2)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:00"))
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    return path


def rate_bars(path: Path, labels: list[str], rates: list[float], title: str) -> Path:
    """A bar per day of a share between 0 and 1 (the answer rate), saved to `path`."""
    fig = Figure(figsize=(10, 4), dpi=110)
    ax = fig.subplots()
    ax.bar(labels, rates, color="#2ca02c")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    return path


def coverage_png(routing: Routing, campaign_id: str, out: Path, language_option: str | None = None) -> Path:
    """Draw who answers each option across a campaign window, gaps in red, for an operator to check coverage."""
    campaign = next(c for c in routing.campaigns if c.id == campaign_id)
    rows = coverage(routing, campaign, language_option)
    options = list(routing.plans[campaign.plan])
    partners = sorted({who for *_, who in rows if who})
    colour = {p: PALETTE[i % len(PALETTE)] for i, p in enumerate(partners)}
    fig = Figure(figsize=(14, 1.0 + 0.6 * len(options)), dpi=110)  # no pyplot: no global state, no display
    ax = fig.subplots()
    for start, end, opt, who in rows:
        y = len(options) - 1 - options.index(opt)
        a, b = (mdates.date2num(t.astimezone(JST).replace(tzinfo=None)) for t in (start, end))
        ax.broken_barh([(a, b - a)], (y - 0.35, 0.7), facecolors=colour[who] if who else GAP, edgecolor="white",
                       linewidth=0.3)
    ax.set_yticks(range(len(options)), list(reversed(options)))
    ax.xaxis.set_major_locator(mdates.DayLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.xaxis.set_minor_locator(mdates.HourLocator(byhour=[6, 12, 18]))
    ax.grid(axis="x", which="major", color="#999999", linewidth=0.6)
    ax.grid(axis="x", which="minor", color="#dddddd", linewidth=0.4)
    ax.set_xlim(*(mdates.date2num(t.astimezone(JST).replace(tzinfo=None)) for t in (campaign.opens, campaign.closes)))
    ax.set_title(f"{campaign.id} ({campaign.status}): who answers each option, JST "
                 f"{campaign.opens.astimezone(JST):%Y-%m-%d %H:%M} to {campaign.closes.astimezone(JST):%Y-%m-%d %H:%M}")
    handles = [Patch(color=colour[p], label=p) for p in partners] + [
        Patch(color=GAP, label="not offered (callers go to the general line)")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(len(handles), 5),
              fontsize=8, frameon=False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out
