"""Readable views of a routing file: the decision at an instant, the golden snapshot, the coverage table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from common.facts import JST
from routing.check import segments
from routing.decide import Routing
from routing.model import Campaign

WEEKDAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _local(instant: dt.datetime) -> str:
    t = instant.astimezone(JST)
    return f"{t:%Y-%m-%d} {WEEKDAY[t.weekday()]} {t:%H:%M}"


def route_lines(routing: Routing, instant: dt.datetime, option: str | None = None,
                language: str | None = None) -> list[str]:
    """Who answers each option at this instant, the chain after them, and the referral lines at its end."""
    campaign = routing.window_at(instant)
    out = [f"at {_local(instant)} JST"]
    if campaign is None:
        nxt = routing.next_window(instant)
        out.append("closed: no campaign window is open")
        out.append(f"next window: {nxt.id} opens {_local(nxt.opens)} ({nxt.status})" if nxt else
                   "next window: none known")
        refs = routing.open_referrals(instant, option or routing.general)
        out.append("open referral lines: " + (", ".join(f"{r.name} {r.number}" for r in refs) or "none"))
        return out
    out.append(f"campaign: {campaign.id} ({campaign.status}), plan '{campaign.plan}'")
    offered = routing.offered(instant)
    for opt in routing.plans[campaign.plan]:
        if option and opt != option:
            continue
        chain = routing.chain(instant, opt, campaign)
        marks = [p.id + ("" if not language or language in p.languages else f" (no {language})") for p in chain]
        refs = routing.open_referrals(instant, opt, campaign=campaign)
        state = "offered" if opt in offered else "not offered now"
        out.append(f"  {opt:<9} {state:<16} chain: {' > '.join(marks) or '-'}")
        out.append(f"  {'':<9} {'':<16} then:  {', '.join(r.name for r in refs) or 'no line open'}")
    return out


def hours_of(campaign: Campaign) -> Iterator[dt.datetime]:
    """The opening instant, then every full hour until the window closes."""
    t = campaign.opens
    yield t
    t = t.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    while t < campaign.closes:
        yield t
        t += dt.timedelta(hours=1)


def snapshot(routing: Routing) -> str:
    """The first answerer for every option at every hour of every window: a diff of this file is a config review."""
    lines = ["# Decisions for every option at every hour of every campaign window (JST).",
             "# option partner: answered there; option closed>partner: not offered, a caller pressing it goes there.",
             "# Regenerate with `make snapshot` and review the diff with the config change."]
    for c in routing.campaigns:
        lines.append("")
        lines.append(f"== {c.id} ({c.status}) {_local(c.opens)} to {_local(c.closes)}, plan '{c.plan}'")
        for t in hours_of(c):
            offered = routing.offered(t)
            cells = []
            for opt in routing.plans[c.plan]:
                d = routing.decide(t, opt)
                who = d.partner.id if d.partner else "referrals"
                cells.append(f"{opt} {who}" if opt in offered else f"{opt} closed>{who}")
            lines.append(f"{_local(t)}  " + " | ".join(cells))
    return "\n".join(lines) + "\n"


def coverage(routing: Routing, campaign: Campaign) -> list[tuple[dt.datetime, dt.datetime, str, str | None]]:
    """(start, end, option, first partner on shift, or None when not offered) per stretch in which nothing changes."""
    pieces = list(segments(routing, campaign.opens, campaign.closes))
    offered = [routing.offered(start) for start, _ in pieces]
    rows: list[tuple[dt.datetime, dt.datetime, str, str | None]] = []
    for opt in routing.plans[campaign.plan]:
        mine: list[tuple[dt.datetime, dt.datetime, str, str | None]] = []
        for (start, end), now in zip(pieces, offered, strict=True):
            chain = routing.chain(start, opt, campaign) if opt in now else ()
            who = chain[0].id if chain else None
            if mine and mine[-1][3] == who:
                mine[-1] = (mine[-1][0], end, opt, who)
            else:
                mine.append((start, end, opt, who))
        rows += mine
    return rows


def coverage_table(routing: Routing, campaign: Campaign) -> list[str]:
    """The coverage of one campaign window as readable lines: who answers each option, stretch by stretch."""
    rows = [f"{campaign.id}: {_local(campaign.opens)} to {_local(campaign.closes)} JST ({campaign.status})"]
    for start, end, opt, who in coverage(routing, campaign):
        rows.append(f"  {opt:<9} {_local(start)} - {_local(end)}  {who or 'NOT OFFERED (callers go to general)'}")
    return rows
