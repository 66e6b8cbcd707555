"""The live facts a routing decision takes, for the request being served: the operators' controls (read from the
store at most every half second, the last ones kept while it is down), callers waiting per partner (read only when a
`least-waiting` shift asks), and the weighted draw (from the call's hash, so every step of one call draws the same).

`follow_reload` runs before each request: when an operator asked every instance to reload (`ivr ops reload`), this
process reloads its config, validating first, and files its answer (applied, unchanged or refused, with the hash).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import redis
import structlog
from flask import current_app

from ivr.call.patience import RATE_WINDOW
from ivr.state import handover
from ivr.state.gauges import ask_taken, taken_lately, waiting_counts
from ivr.web.helpers import ext, flow
from ivr.web.hook import hook
from routing.share import NO_LIVE, Live

log = structlog.get_logger("ivr.live")


class Waiting(Mapping[str, int]):
    """Callers waiting per partner, read from the store on first use (once per request); every count 0 when it
    cannot be read, so a least-waiting shift falls back to its order."""

    def __init__(self) -> None:
        self._counts: dict[str, int] | None = None

    def _read(self) -> dict[str, int]:
        if self._counts is None:
            store, routing = ext("store"), flow().routing
            queues = {pid: routing.queues_of(pid) for pid in routing.partners}
            try:
                self._counts = {} if store.degraded else waiting_counts(store.client, queues, store.ttl)
            except redis.RedisError:
                self._counts = {}
        return self._counts

    def __getitem__(self, partner: str) -> int:
        return self._read()[partner]

    def __iter__(self) -> Iterator[str]:
        return iter(self._read())

    def __len__(self) -> int:
        return len(self._read())


def pick_of(call_hash: str | None) -> float:
    """A number in [0, 1) from the call's hash: the same for every step of one call, spread evenly across calls."""
    try:
        return int((call_hash or "")[:8], 16) / 0x1_0000_0000
    except ValueError:
        return 0.0


def live() -> Live:
    """What operators and the store say now, for this request (memoised on it)."""
    served = hook()
    if served.live is not None:
        return served.live
    controls = served.extensions.get("ivr.controls")
    if controls is None:
        return NO_LIVE
    snap = controls.snapshot()
    now = controls.wall()
    announcement = snap.announcement(now)
    made = Live(paused=snap.paused(now), closed=snap.closed(now) - {flow().general}, waiting=Waiting(),
                pick=pick_of(served.call), announcement=announcement.target if announcement else None)
    served.live = made
    return made


def read_ahead(rate_of: str | None) -> None:
    """A wait round's reads, in one round trip with the round's writes: the desk of a counsellor who took this caller
    (desk) and, when the round may estimate the wait, how many callers `rate_of`'s counsellors took lately
    (handled). Each was a round trip of its own, about 0.25 ms of CPU apiece under gevent. When the store cannot
    answer nothing is kept, and each read then asks the store itself, as before."""
    served, store = hook(), ext("store")
    if served.sid is None or store.degraded:
        return
    sid = served.sid

    def commands(pipe: Any) -> None:
        handover.ask_desk(pipe, sid)
        if rate_of:
            ask_taken(pipe, rate_of, RATE_WINDOW)

    replies = store.read("wait", commands)
    if replies is not None:
        served.ahead["desk"] = handover.desk_from(replies[0])
        if rate_of:
            served.ahead["handled"] = (rate_of, int(replies[1]))


def desk() -> str | None:
    """The desk of the counsellor who took this caller, if one did and still waits for them (read ahead, or now)."""
    served = hook()
    if "desk" in served.ahead:
        return served.ahead["desk"]
    return handover.desk_of(ext("store"), served.sid)


def handled(partner: str) -> int | None:
    """Callers this partner's counsellors took in the last RATE_WINDOW seconds (read ahead, or now); None when the
    store cannot say."""
    ahead = hook().ahead.get("handled")
    if ahead is not None and ahead[0] == partner:
        return ahead[1]
    store = ext("store")
    if store.degraded:
        return None
    try:
        return taken_lately(store.client, partner, RATE_WINDOW)
    except redis.RedisError:
        return None


def follow_reload() -> None:
    """Before each request Flask serves: reload_if_asked."""
    reload_if_asked(current_app.extensions)


def reload_if_asked(extensions: dict[str, Any]) -> None:
    """Reload this process's config when an operator asked every instance to, and file the answer."""
    controls = extensions.get("ivr.controls")
    asked = controls.reload_due(controls.snapshot()) if controls is not None else None
    if controls is None or asked is None:
        return
    result, loaded, details = extensions["ivr.config"].reload()
    answer = "refused" if result == "rejected" else result
    log.info("reload_followed", id=asked.get("id"), by=asked.get("by"), result=answer, hash=loaded.digest)
    controls.report_reload(str(asked.get("id")), answer, loaded.digest, details)
