"""Emergency flags: a counsellor's record that a caller is in danger, and the audited reveal of the caller's number.

A flag is kept under the caller's CallSid (`ivr:emergency:<CallSid>`, a hash) with the partner, the option, the time
and whether the caller consented to be helped; nothing else, never the number. `ivr:emergency-open` lists the flags
by time. Both expire FLAG_TTL after the flag was raised; a reveal is refused once a flag is older than REVEAL_WINDOW.

A reveal asks Twilio for the call's `from` at that moment (the service never stores it), checked against two
distinct supervisors named in the partners file, and counted in `ivr:emergency-reveals` (read by /metrics, which
the alert on every reveal watches). The audit line names both supervisors and the reason, never the number.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from common.facts import JST
from ivr.state.keys import AGGREGATE_TTL, key
from ivr.state.store import valid_call_sid

FLAG_TTL = 48 * 3600  # a flag is kept this long (listed as too old to reveal after REVEAL_WINDOW)
REVEAL_WINDOW = 24 * 3600  # seconds after the flag within which a reveal is allowed
OPEN = "ivr:emergency-open"
REVEALS = "ivr:emergency-reveals"  # every reveal, counted (the alert fires on each)
CONSENT = ("yes", "no")


@dataclass(frozen=True)
class Flag:
    """One emergency flag: the caller's CallSid, the counsellor's partner, the option, when, and the consent."""

    call: str
    partner: str
    option: str
    at: dt.datetime
    consent: str  # yes / no
    revealed: bool = False

    def age(self, now: dt.datetime) -> float:
        """Seconds since the flag was raised."""
        return (now - self.at).total_seconds()


def raise_flag(client: redis.Redis, call_sid: str | None, partner: str, option: str, consent: str,
               at: dt.datetime) -> bool:
    """Record a flag on the caller's call; False when the CallSid is not one or the store failed."""
    sid = valid_call_sid(call_sid)
    if sid is None or consent not in CONSENT:
        return False
    try:
        with client.pipeline(transaction=True) as pipe:
            pipe.hset(key("emergency", sid), mapping={"partner": partner, "option": option,
                                                      "at": at.astimezone(JST).isoformat(), "consent": consent})
            pipe.expire(key("emergency", sid), FLAG_TTL)
            pipe.zadd(OPEN, {sid: at.timestamp()})
            pipe.zremrangebyscore(OPEN, "-inf", at.timestamp() - FLAG_TTL)
            pipe.expire(OPEN, FLAG_TTL)
            pipe.execute()
    except redis.RedisError:
        return False
    return True


def flag(client: Any, call_sid: str) -> Flag | None:
    """The flag on this call; None when there is none (or it expired)."""
    sid = valid_call_sid(call_sid)
    if sid is None:
        return None
    raw = {k.decode(): v.decode() for k, v in client.hgetall(key("emergency", sid)).items()}
    if not raw.get("at"):
        return None
    return Flag(sid, raw.get("partner", ""), raw.get("option", ""), dt.datetime.fromisoformat(raw["at"]),
                raw.get("consent", "no"), raw.get("revealed") == "1")


def open_flags(client: Any) -> list[Flag]:
    """Every flag still kept, oldest first."""
    out = []
    for raw in client.zrange(OPEN, 0, -1):
        f = flag(client, raw.decode())
        if f is not None:
            out.append(f)
    return out


def mark_revealed(client: Any, call_sid: str) -> bool:
    """Mark the flag's number as revealed, once (False when it was before); the reveal is counted."""
    if not client.hsetnx(key("emergency", call_sid), "revealed", "1"):
        return False
    with client.pipeline(transaction=True) as pipe:
        pipe.incr(REVEALS)
        pipe.expire(REVEALS, AGGREGATE_TTL)
        pipe.execute()
    return True


def unmark_revealed(client: Any, call_sid: str) -> None:
    """Twilio did not answer: nothing was shown, the flag may be revealed again (the attempt stays counted)."""
    client.hdel(key("emergency", call_sid), "revealed")


class RevealsCollector(Collector):
    """`ivr_emergency_reveals_total`, read from the store at scrape time: the reveals happen in `ivr emergency
    reveal`, a process Prometheus never scrapes."""

    def __init__(self, client: Any):
        self.client = client

    def collect(self) -> Iterator[CounterMetricFamily]:
        """The count of reveals so far (absent while the store cannot be read)."""
        family = CounterMetricFamily("ivr_emergency_reveals", "Callers' numbers revealed by two supervisors for "
                                     "an emergency flag (ivr emergency reveal)")
        try:
            raw = self.client.get(REVEALS)
        except redis.RedisError:
            return
        family.add_metric([], float(int(raw)) if raw is not None and raw.isdigit() else 0.0)
        yield family


def init_app(app: Any) -> None:
    """Serve the count of reveals at /metrics, read from the store by the process that answers the scrape."""
    metrics, store = app.extensions["ivr.metrics"], app.extensions["ivr.store"]
    collector = RevealsCollector(store.client)
    metrics.collectors.append(collector)
    metrics.registry.register(collector)
