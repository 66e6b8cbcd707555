"""Erlang C: how many counsellors answer a share of callers within a given time. Pure: numbers in, numbers out.

The model (M/M/N: calls arrive at random at a steady rate, talk times are exponential, callers wait in one queue and
do not give up) is A. K. Erlang's delay formula, in the form call-centre planners use:

- offered traffic A = calls per hour x average handling time (s) / 3600, in erlangs;
- probability a caller waits, for N seats (N > A): C(N, A) = N·B / (N - A·(1 - B)), where B is Erlang B, computed by
  its recursion B(0) = 1, B(n) = A·B(n-1) / (n + A·B(n-1)) (stable for hundreds of seats, no factorials);
- share answered within t seconds: SL = 1 - C(N, A)·exp(-(N - A)·t / AHT);
- average speed of answer: ASA = C(N, A)·AHT / (N - A).

Sources: V. B. Iversen, Teletraffic Engineering Handbook (ITU-D SG2), the chapter on delay systems (Erlang C from
Erlang B), and the worked example checked in tests/test_erlang.py: 100 calls in 30 minutes, 180 s handling,
80 % within 20 s -> 10 erlangs, 14 seats, waiting probability 0.1741319, service level 0.88835, ASA 7.836 s
(pyworkforce's README on PyPI, and the R package ErlangC's documentation, both published with those figures).

A planning figure, not a promise: Erlang C ignores callers who hang up while waiting (so it asks for a few more seats
than a line with abandonment needs) and assumes the same seats for the whole hour.
"""

from __future__ import annotations

import math

MAX_SEATS = 2000  # past this an hour's need is reported as unattainable rather than searched further


def erlang_b(seats: int, traffic: float) -> float:
    """Erlang B: the share of calls that find every one of `seats` busy when nobody waits, for `traffic` erlangs."""
    if seats < 0 or traffic < 0:
        raise ValueError("seats and traffic must not be negative")
    b = 1.0
    for n in range(1, seats + 1):
        b = traffic * b / (n + traffic * b)
    return b


def waiting_probability(seats: int, traffic: float) -> float:
    """Erlang C: the probability a caller has to wait, with `seats` counsellors and `traffic` erlangs offered
    (1.0 when the seats cannot keep up: N <= A)."""
    if traffic <= 0:
        return 0.0
    if seats <= traffic:
        return 1.0
    b = erlang_b(seats, traffic)
    return seats * b / (seats - traffic * (1 - b))


def service_level(seats: int, traffic: float, aht: float, within: float) -> float:
    """The share of callers answered within `within` seconds (handling time `aht` seconds)."""
    if traffic <= 0:
        return 1.0
    if seats <= traffic:
        return 0.0
    return 1.0 - waiting_probability(seats, traffic) * math.exp(-(seats - traffic) * within / aht)


def average_speed_of_answer(seats: int, traffic: float, aht: float) -> float:
    """The mean wait before a counsellor answers, in seconds (infinite when the seats cannot keep up)."""
    if traffic <= 0:
        return 0.0
    if seats <= traffic:
        return math.inf
    return waiting_probability(seats, traffic) * aht / (seats - traffic)


def traffic_of(calls_per_hour: float, aht: float) -> float:
    """Offered traffic in erlangs: calls per hour times handling seconds, over the hour's 3600 seconds."""
    return max(calls_per_hour, 0.0) * max(aht, 0.0) / 3600.0


def seats_needed(calls_per_hour: float, aht: float, within: float, target: float) -> int:
    """The fewest counsellors answering `target` (0-1) of callers within `within` seconds; 0 with no calls.
    Raises ValueError when even MAX_SEATS would not do (or the target is 1, which no finite number meets)."""
    if not 0 < target < 1:
        raise ValueError(f"target {target} must be between 0 and 1 (exclusive)")
    traffic = traffic_of(calls_per_hour, aht)
    if traffic == 0:
        return 0
    for seats in range(math.floor(traffic) + 1, MAX_SEATS + 1):
        if service_level(seats, traffic, aht, within) >= target:
            return seats
    raise ValueError(f"{traffic:.1f} erlangs need more than {MAX_SEATS} seats for this target")


__all__ = ["MAX_SEATS", "average_speed_of_answer", "erlang_b", "seats_needed", "service_level", "traffic_of",
           "waiting_probability"]
