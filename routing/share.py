"""Live facts a decision may take into account, and how partners on the same shift share the calls.

Pure: the facts (callers waiting per partner, paused partners, closed options, a number for the weighted draw) are
plain arguments, read from the shared store by the caller of `Routing.decide`. Without them a decision follows the
chain order, as it does when the store cannot be read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from routing.model import Partner


@dataclass(frozen=True, slots=True)
class Live:
    """What operators and the shared store say now, for one decision.

    paused: partner ids taken out of every route; closed: option ids not offered (their callers go to the general
    line); waiting: callers waiting now per partner id (None: unknown, e.g. the store is down: chain order);
    pick: a number in [0, 1) for the weighted draw (stable for one call, so its later steps keep the same order);
    first: the partner a shared shift already gave this call (carried in its action URLs)."""

    paused: frozenset[str] = frozenset()
    closed: frozenset[str] = frozenset()
    waiting: Mapping[str, int] | None = None
    pick: float = 0.0
    first: str | None = None
    announcement: str | None = field(default=None, compare=False)


NO_LIVE = Live()


def chosen(group: tuple[Partner, ...], rule: str | None, live: Live) -> Partner | None:
    """The partner of a shared shift who takes this call: the one already given to it (even paused since: the call's
    order, which its step counts along, stays the same, and the decision steps over a paused partner), else by the
    rule among the partners not paused (weighted: by weight with `pick`; least-waiting: fewest waiting per place,
    shift order on a tie, shift order when the counts are unknown). None when none was given and every one is paused."""
    if live.first is not None:
        kept = next((p for p in group if p.id == live.first), None)
        if kept is not None:
            return kept
    candidates = [p for p in group if p.id not in live.paused]
    if not candidates:
        return None
    if rule == "weighted":
        point = min(max(live.pick, 0.0), 0.999999) * sum(p.weight for p in candidates)
        for p in candidates:
            point -= p.weight
            if point < 0:
                return p
        return candidates[-1]
    if rule == "least-waiting" and live.waiting is not None:
        counts = live.waiting
        return min(candidates, key=lambda p: counts.get(p.id, 0) / (p.capacity or 1))
    return candidates[0]


def shared_order(chain: tuple[Partner, ...], size: int, rule: str | None,
                 live: Live) -> tuple[tuple[Partner, ...], str | None]:
    """The chain with the partner chosen among its first `size` (the shared shift) put first, the others of the
    shift after it in their order, then the rest; and the id of the one chosen (None: no shared shift here)."""
    if rule is None or size < 2:
        return chain, None
    group = chain[:size]
    head = chosen(group, rule, live)
    if head is None:
        return chain, None
    return (head, *(p for p in group if p is not head), *chain[size:]), head.id


def describe(group: tuple[Partner, ...], rule: str) -> str:
    """A shared shift as the preview shows it: 'a+b (weighted 2:1)' or 'a+b (least-waiting)'."""
    ids = "+".join(p.id for p in group)
    if rule == "weighted":
        return f"{ids} (weighted {':'.join(str(p.weight) for p in group)})"
    return f"{ids} ({rule})"
