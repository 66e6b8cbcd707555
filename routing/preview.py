"""Readable views of a routing file: the decision at an instant, the golden snapshot, the coverage table."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from common.facts import HOME, JST
from routing.check import segments
from routing.decide import Routing, takes_other_languages
from routing.model import Campaign, Partner
from routing.share import describe

WEEKDAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _local(instant: dt.datetime) -> str:
    t = instant.astimezone(JST)
    return f"{t:%Y-%m-%d} {WEEKDAY[t.weekday()]} {t:%H:%M}"


def route_lines(routing: Routing, instant: dt.datetime, option: str | None = None, language: str | None = None,
                language_option: str | None = None) -> list[str]:
    """Who answers each option at this instant, the chain after them, and the phone, chat and mail lines at its end.
    With `language`, partners are marked that take it through an interpreter or cannot take it at all; with
    `language_option` (the menu's choose-language option), that option shows as offered through its chain."""
    campaign = routing.window_at(instant)
    lang = language or HOME
    out = [f"at {_local(instant)} JST"]
    if campaign is None:
        nxt = routing.next_window(instant)
        out.append("closed: no campaign window is open")
        out.append(f"next window: {nxt.id} opens {_local(nxt.opens)} ({nxt.status})" if nxt else
                   "next window: none known")
        refs = routing.open_referrals(instant, option or routing.general, language=lang)
        out.append("open referral lines: " + (", ".join(f"{r.name} {r.number}" for r in refs) or "none"))
        online = routing.online_referrals(instant, option or routing.general, language=lang)
        out.append("open online lines: " + (", ".join(f"{r.name} ({r.kind})" for r in online) or "none"))
        return out
    out.append(f"campaign: {campaign.id} ({campaign.status}), plan '{campaign.plan}'")
    own, offered = routing.offered(instant), routing.offered(instant, language_option)
    for opt in routing.plans[campaign.plan]:
        if option and opt != option:
            continue
        chain = routing.chain(instant, opt, campaign)
        marks = [p.id + _mark(p, language) for p in chain]
        group, rule = routing.shared_shift(instant, opt, campaign)
        if group and rule:  # partners sharing the shift: one step, shown together with how they share
            marks = [describe(group, rule), *marks[len(group):]]
        refs = routing.open_referrals(instant, opt, campaign=campaign, language=lang)
        online = routing.online_referrals(instant, opt, campaign=campaign, language=lang)
        state = "offered" if opt in own else _through(chain) if opt in offered else "not offered now"
        out.append(f"  {opt:<9} {state:<16} chain: {' > '.join(marks) or '-'}")
        out.append(f"  {'':<9} {'':<16} then:  {', '.join(r.name for r in refs) or 'no line open'}")
        out.append(f"  {'':<9} {'':<16} online: {', '.join(f'{r.name} ({r.kind})' for r in online) or 'none open'}")
    return out


def _mark(partner: Partner, language: str | None) -> str:
    """' (interpreter)' for a partner taking `language` through an interpreter, ' (no xx)' for one who cannot."""
    if not language or language in partner.languages:
        return ""
    return " (interpreter)" if partner.interpreter else f" (no {language})"


def _through(chain: tuple[Partner, ...]) -> str:
    """How the choose-language option is offered with nobody on its own shift: through whom in its chain."""
    first = next(p for p in chain if takes_other_languages(p))
    return "via overflow" if any(lang != HOME for lang in first.languages) else "via interpreter"


def hours_of(campaign: Campaign) -> Iterator[dt.datetime]:
    """The opening instant, then every full hour until the window closes."""
    t = campaign.opens
    yield t
    t = t.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    while t < campaign.closes:
        yield t
        t += dt.timedelta(hours=1)


def _first(routing: Routing, instant: dt.datetime, option: str, language_option: str | None) -> str:
    """Who a caller pressing the option reaches first (for the language option: the first partner who takes a caller
    in another language), or 'referrals'."""
    if option == language_option:
        chain = [p for p in routing.chain(instant, option) if takes_other_languages(p)]
        return chain[0].id if chain else "referrals"
    d = routing.decide(instant, option)
    group, _ = routing.shared_shift(instant, d.option)
    if d.partner is not None and d.step == 0 and group:
        return "+".join(p.id for p in group)
    return d.partner.id if d.partner else "referrals"


def snapshot(routing: Routing, language_option: str | None = None) -> str:
    """The first answerer for every option at every hour of every window: a diff of this file is a config review.
    The language option (the menu's choose-language one) shows who first takes a caller in another language."""
    lines = ["# Decisions for every option at every hour of every campaign window (JST).",
             "# option partner: answered there; option closed>partner: not offered, a caller pressing it goes there.",
             "# Regenerate with `make snapshot` and review the diff with the config change."]
    for c in routing.campaigns:
        lines.append("")
        lines.append(f"== {c.id} ({c.status}) {_local(c.opens)} to {_local(c.closes)}, plan '{c.plan}'")
        for t in hours_of(c):
            offered = routing.offered(t, language_option)
            cells = []
            for opt in routing.plans[c.plan]:
                who = _first(routing, t, opt, language_option)
                cells.append(f"{opt} {who}" if opt in offered else f"{opt} closed>{who}")
            lines.append(f"{_local(t)}  " + " | ".join(cells))
    return "\n".join(lines) + "\n"


def coverage(routing: Routing, campaign: Campaign,
             language_option: str | None = None) -> list[tuple[dt.datetime, dt.datetime, str, str | None]]:
    """(start, end, option, first partner on shift, or None when not offered) per stretch in which nothing changes;
    for the language option, the first partner who takes a caller in another language."""
    pieces = list(segments(routing, campaign.opens, campaign.closes))
    offered = [routing.offered(start, language_option) for start, _ in pieces]
    rows: list[tuple[dt.datetime, dt.datetime, str, str | None]] = []
    for opt in routing.plans[campaign.plan]:
        mine: list[tuple[dt.datetime, dt.datetime, str, str | None]] = []
        for (start, end), now in zip(pieces, offered, strict=True):
            chain = [p for p in routing.chain(start, opt, campaign) if opt != language_option
                     or takes_other_languages(p)] if opt in now else []
            group, rule = routing.shared_shift(start, opt, campaign) if opt in now else ((), None)
            who = describe(group, rule) if group and rule and opt != language_option else \
                chain[0].id if chain else None
            if mine and mine[-1][3] == who:
                mine[-1] = (mine[-1][0], end, opt, who)
            else:
                mine.append((start, end, opt, who))
        rows += mine
    return rows


def coverage_table(routing: Routing, campaign: Campaign, language_option: str | None = None) -> list[str]:
    """The coverage of one campaign window as readable lines: who answers each option, stretch by stretch."""
    rows = [f"{campaign.id}: {_local(campaign.opens)} to {_local(campaign.closes)} JST ({campaign.status})"]
    for start, end, opt, who in coverage(routing, campaign, language_option):
        rows.append(f"  {opt:<9} {_local(start)} - {_local(end)}  {who or 'NOT OFFERED (callers go to general)'}")
    return rows
