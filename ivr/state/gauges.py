"""Live figures read from the shared store: callers waiting per partner and option, the longest wait, counsellors
logged in, places in use, and the controls in force.

`LiveCollector` reads them at scrape time, in the one process that answers the scrape: its series are not written to
the multiprocess files, so they are never added up across workers. Every instance reads the same store and says the
same, so dashboards and alerts take `max by (...)` across instances, never `sum`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ivr.state.controls import Controls
from ivr.state.keys import key

PRESENCE = 30 * 60  # a counsellor counts as logged in this long after the line last saw them (login, caller, idle)
TAKEN_WINDOW = 3600  # how long a caller taken is kept for the answering rate


@dataclass
class Figures:
    """What the store says now. waiting: (partner, option) -> callers; longest: partner -> seconds; counsellors
    and places: partner -> count."""

    waiting: dict[tuple[str, str], int] = field(default_factory=dict)
    longest: dict[str, float] = field(default_factory=dict)
    counsellors: dict[str, int] = field(default_factory=dict)
    places: dict[str, int] = field(default_factory=dict)

    def waiting_of(self, partner: str) -> int:
        """Callers waiting now at one partner, every option."""
        return sum(n for (p, _), n in self.waiting.items() if p == partner)


def _stamp(client: redis.Redis, zkey: str, member: str, keep: int, now: float | None) -> None:
    """Put `member` in the sorted set `zkey` at time `now`, and drop what is older than `keep` seconds (the set
    itself expires then too). Best effort: a failing Redis changes nothing for the caller or the counsellor."""
    now = time.time() if now is None else now
    try:
        pipe = client.pipeline(transaction=True)
        pipe.zadd(zkey, {member: now})
        pipe.zremrangebyscore(zkey, "-inf", now - keep)
        pipe.expire(zkey, keep)
        pipe.execute()
    except redis.RedisError:
        return


def counsellor_seen(client: redis.Redis, partner: str, tag: str, now: float | None = None) -> None:
    """Note that a counsellor of this partner is on the line now (by their session tag, never their id). Best
    effort."""
    _stamp(client, key("online", partner), tag, PRESENCE, now)


def caller_taken(client: redis.Redis, partner: str, tag: str, now: float | None = None) -> None:
    """Note that a counsellor of this partner has just taken a waiting caller (by the session's tag and the time,
    never the caller), for the rate an honest wait estimate is made from. Best effort."""
    now = time.time() if now is None else now
    _stamp(client, key("taken", partner), f"{tag}:{now:.3f}", TAKEN_WINDOW, now)


def taken_lately(client: redis.Redis, partner: str, window: int, now: float | None = None) -> int:
    """Callers this partner's counsellors took in the last `window` seconds. Raises RedisError."""
    return int(ask_taken(client, partner, window, now))


def ask_taken(target: Any, partner: str, window: int, now: float | None = None) -> Any:
    """taken_lately's command sent on `target`, a client (its reply) or a pipeline (queued there)."""
    now = time.time() if now is None else now
    return target.zcount(key("taken", partner), now - window, "+inf")


def waiting_counts(client: redis.Redis, queues: Mapping[str, list[str]], ttl: int,
                   now: float | None = None) -> dict[str, int]:
    """Callers waiting now at each partner (its queues, the urgent lane too). Raises RedisError."""
    now = time.time() if now is None else now
    pipe = client.pipeline(transaction=False)
    order = [(p, q) for p, qs in queues.items() for q in qs]
    for _, q in order:
        pipe.zcount(key("waiting", q), now - ttl, "+inf")
    out: dict[str, int] = dict.fromkeys(queues, 0)
    for (p, _), n in zip(order, pipe.execute(), strict=True):
        out[p] += int(n)
    return out


def read_figures(client: redis.Redis, routing: Any, ttl: int, now: float | None = None) -> Figures:
    """Every live figure, in two round trips. Raises RedisError."""
    now = time.time() if now is None else now
    partners = list(routing.partners.values())
    queues = [(p.id, q) for p in partners for q in routing.queues_of(p.id)]
    pipe = client.pipeline(transaction=False)
    for _, q in queues:
        pipe.zrangebyscore(key("waiting", q), now - ttl, "+inf", withscores=True)
    for p in partners:
        pipe.zcount(key("online", p.id), now - PRESENCE, "+inf")
        pipe.zcount(key("lease", p.id), now, "+inf")
    results = pipe.execute()
    heads: list[tuple[str, bytes]] = []
    fig = Figures()
    for (pid, _), members in zip(queues, results[:len(queues)], strict=True):
        for sid, since in members:
            heads.append((pid, sid))
            fig.longest[pid] = max(fig.longest.get(pid, 0.0), max(0.0, now - since))
    rest = results[len(queues):]
    for i, p in enumerate(partners):
        fig.counsellors[p.id] = int(rest[2 * i])
        fig.places[p.id] = int(rest[2 * i + 1])
    if heads:
        pipe = client.pipeline(transaction=False)
        for _, sid in heads:
            pipe.hget(key("call", sid.decode()), "option")
        for (pid, _), option in zip(heads, pipe.execute(), strict=True):
            name = option.decode() if option else "unknown"
            fig.waiting[(pid, name)] = fig.waiting.get((pid, name), 0) + 1
    return fig


class LiveCollector(Collector):
    """The live figures and the controls in force, read from the store at scrape time (once per scrape, by the
    process that answers it)."""

    def __init__(self, client: redis.Redis, controls: Controls, config: Any, ttl: int):
        self.client = client
        self.controls = controls
        self.config = config
        self.ttl = ttl

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges as the store says now; only `ivr_live_readable` 0 when it cannot be read."""
        loaded = self.config.current
        routing, menu = loaded.routing, loaded.menu
        readable = GaugeMetricFamily("ivr_live_readable", "1 when the live figures below could be read from the "
                                     "shared store at this scrape")
        try:
            fig = read_figures(self.client, routing, self.ttl)
        except redis.RedisError:
            readable.add_metric([], 0)
            yield readable
            return
        readable.add_metric([], 1)
        yield readable
        queue_partners = [p for p in routing.partners.values() if p.kind == "queue"]
        options = tuple(menu.all_option_ids)
        waiting = GaugeMetricFamily("ivr_live_waiting_callers", "Callers waiting now in a partner's queues, by the "
                                    "option they chose", labels=["partner", "option"])
        counts = {(p.id, o): 0 for p in queue_partners for o in options} | fig.waiting
        for (pid, option), n in sorted(counts.items()):
            waiting.add_metric([pid, option], n)
        yield waiting
        longest = GaugeMetricFamily("ivr_live_longest_wait_seconds", "How long the caller waiting longest in a "
                                    "partner's queues has waited (0: nobody waiting)", labels=["partner"])
        online = GaugeMetricFamily("ivr_live_counsellors", "Counsellors of a partner seen on the counsellors' line in "
                                   f"the last {PRESENCE // 60} minutes", labels=["partner"])
        for p in queue_partners:
            longest.add_metric([p.id], round(fig.longest.get(p.id, 0.0), 1))
            online.add_metric([p.id], fig.counsellors.get(p.id, 0))
        yield longest
        yield online
        in_use = GaugeMetricFamily("ivr_live_places_in_use", "Places taken now at a partner with a cap",
                                   labels=["partner"])
        capacity = GaugeMetricFamily("ivr_partner_capacity", "A partner's cap on calls at once", labels=["partner"])
        for p in routing.partners.values():
            if p.capacity is not None:
                in_use.add_metric([p.id], fig.places.get(p.id, 0))
                capacity.add_metric([p.id], p.capacity)
        yield in_use
        yield capacity
        yield from self._controls(routing, menu)

    def _controls(self, routing: Any, menu: Any) -> Iterator[GaugeMetricFamily]:
        snap = self.controls.snapshot()
        now = self.controls.wall()
        paused, closed, playing = snap.paused(now), snap.closed(now), snap.announcement(now)
        g_paused = GaugeMetricFamily("ivr_live_partner_paused", "1 while an operator has paused the partner",
                                     labels=["partner"])
        for pid in routing.partners:
            g_paused.add_metric([pid], 1 if pid in paused else 0)
        yield g_paused
        g_closed = GaugeMetricFamily("ivr_live_option_closed", "1 while an operator has closed the option",
                                     labels=["option"])
        for option in menu.all_option_ids:
            g_closed.add_metric([option], 1 if option in closed else 0)
        yield g_closed
        g_ann = GaugeMetricFamily("ivr_live_announcement", "1 for the announcement an operator set to play after "
                                  "the greeting (no series: none)", labels=["announcement"])
        if playing is not None:
            g_ann.add_metric([playing.target], 1)
        yield g_ann


def init_app(app: Any) -> None:
    """Serve the live figures at /metrics: one collector, read by the process that answers the scrape."""
    metrics, store = app.extensions["ivr.metrics"], app.extensions["ivr.store"]
    collector = LiveCollector(store.client, app.extensions["ivr.controls"], app.extensions["ivr.config"], store.ttl)
    metrics.collectors.append(collector)
    metrics.registry.register(collector)
