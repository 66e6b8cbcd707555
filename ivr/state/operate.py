"""What an operator may do during a campaign, checked the same way from the command line and the HTTP API:
pause or resume a partner, close or open an option, play or clear an announcement, reload everywhere, and the
status of it all with the live figures."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import redis

from common.facts import JST, parse_instant
from ivr.state.controls import Controls, Kind
from ivr.state.gauges import read_figures

ACTIONS = ("pause", "resume", "close", "open", "announce", "announce-clear")
DURATION = re.compile(r"^(\d{1,5})([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
BY = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
MAX_WHY = 300


class OpsRefused(ValueError):
    """An operator's request that is not carried out, with what to do instead."""


def seconds_of(text: str) -> int:
    """'30m' -> 1800 ('90s', '2h', '1d' too)."""
    found = DURATION.fullmatch(text.strip())
    if not found or int(found[1]) == 0:
        raise OpsRefused(f"--for '{text}': write a number and a unit, e.g. 90s, 30m, 2h, 1d")
    return int(found[1]) * UNITS[found[2]]


def until_of(for_: str | None, until: str | None, now: float) -> float | None:
    """The epoch second a control ends at, from `--for` or `--until` (an ISO-8601 instant with a zone); None: until
    undone."""
    if for_ and until:
        raise OpsRefused("give --for or --until, not both")
    if for_:
        return now + seconds_of(for_)
    if until:
        try:
            when = parse_instant(until)
        except ValueError as e:  # not an instant, or one without its zone
            raise OpsRefused(f"--until: {e}") from None
        if when.timestamp() <= now:
            raise OpsRefused(f"--until '{until}' has already passed")
        return when.timestamp()
    return None


def apply(controls: Controls, loaded: Any, action: str, target: str, by: str, why: str = "",
          for_: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Carry out one control after checking it against the config serving now; what was done, as plain data.
    Raises OpsRefused (a bad request) or RedisError (the store cannot be written)."""
    if action not in ACTIONS:
        raise OpsRefused(f"unknown action '{action}'; allowed: {', '.join(ACTIONS)}")
    if not BY.fullmatch(by or "") or not by.strip():
        raise OpsRefused("say who you are: --by NAME (1-64 characters), written to the audit log")
    if len(why) > MAX_WHY:
        raise OpsRefused(f"--why is longer than {MAX_WHY} characters")
    routing, menu = loaded.routing, loaded.menu
    kind: Kind
    if action in ("pause", "resume"):
        kind = "pause"
        if target not in routing.partners:
            raise OpsRefused(f"unknown partner '{target}'; allowed: {', '.join(sorted(routing.partners))}")
    elif action in ("close", "open"):
        kind = "close"
        if target not in menu.all_option_ids:
            raise OpsRefused(f"unknown option '{target}'; allowed: {', '.join(menu.all_option_ids)}")
        if target == routing.general:
            raise OpsRefused(f"'{target}' is the general line, where every other line ends: pause its partners "
                             "instead, or announce")
    else:
        kind = "announce"
        known = tuple(getattr(menu, "announcement_ids", ()))
        if action == "announce" and target not in known:
            raise OpsRefused(f"unknown announcement '{target}'; prepared ones in the menu file: "
                             f"{', '.join(known) or 'none'}")
    now = controls.wall()
    if action in ("pause", "close", "announce"):
        c = controls.set(kind, target, by.strip(), why, until_of(for_, until, now))
        return {"done": action, "target": target, "by": c.by, "why": c.why, "until": iso(c.until)}
    was = controls.clear(kind, target, by.strip(), why)
    return {"done": action, "target": target, "by": by.strip(), "was_set": was}


def iso(epoch: float | None) -> str | None:
    """An epoch second as a JST instant, for people; None stays None."""
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, JST).isoformat(timespec="seconds")


def status(controls: Controls, loaded: Any, ttl: int, audit: int = 10) -> dict[str, Any]:
    """The controls in force (expired ones dropped and audited), the live figures and the latest audit entries."""
    now = controls.wall()
    controls.expired(now)
    snap = controls.snapshot()
    out: dict[str, Any] = {
        "controls": [{"kind": c.kind, "target": c.target, "by": c.by, "why": c.why, "since": iso(c.at),
                      "until": iso(c.until)} for c in snap.in_force(now)],
        "audit": [{**e, "at": iso(e.get("at"))} for e in controls.audit(audit)],
    }
    routing = loaded.routing
    try:
        fig = read_figures(controls.client, routing, ttl, now)
    except redis.RedisError:
        out["partners"] = None
        return out
    paused = snap.paused(now)
    out["partners"] = [{"partner": p.id, "waiting": fig.waiting_of(p.id),
                        "longest_wait": round(fig.longest.get(p.id, 0.0)), "max_wait": p.max_wait,
                        "counsellors": fig.counsellors.get(p.id, 0), "places": fig.places.get(p.id, 0),
                        "capacity": p.capacity, "paused": p.id in paused} for p in routing.partners.values()]
    return out
