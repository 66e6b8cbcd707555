"""Erlang C against a published worked example, and the edges a staffing plan meets (no calls, overload)."""

from __future__ import annotations

import math

import pytest

from common.erlang import (
    average_speed_of_answer,
    erlang_b,
    seats_needed,
    service_level,
    traffic_of,
    waiting_probability,
)

# The worked example published with pyworkforce (README, https://pypi.org/project/pyworkforce/0.2.1/) and with the R
# package ErlangC (https://rdocumentation.org/packages/ErlangC/versions/0.1.0): 100 calls in 30 minutes, 180 s
# average handling, answer 80 % within 20 s -> 10 erlangs, 14 agents, waiting probability 0.1741319, service level
# 0.88835, average speed of answer 7.836 s, occupancy 0.7142857.
CALLS_PER_HOUR, AHT, WITHIN, TARGET = 200, 180, 20, 0.8


def test_the_published_worked_example() -> None:
    """A planner who checks our figures against a textbook calculator gets the same seats and percentages."""
    traffic = traffic_of(CALLS_PER_HOUR, AHT)
    assert traffic == 10.0
    assert seats_needed(CALLS_PER_HOUR, AHT, WITHIN, TARGET) == 14
    assert waiting_probability(14, traffic) == pytest.approx(0.1741319, abs=1e-7)
    assert service_level(14, traffic, AHT, WITHIN) == pytest.approx(0.88835, abs=1e-5)
    assert average_speed_of_answer(14, traffic, AHT) == pytest.approx(7.835937, abs=1e-5)
    assert traffic / 14 == pytest.approx(0.7142857, abs=1e-7)
    assert service_level(13, traffic, AHT, WITHIN) < TARGET  # 13 seats miss the target: 14 is the fewest


def test_erlang_b_recursion_matches_the_closed_form() -> None:
    """Erlang B by recursion equals A^N/N! over the sum of A^k/k! (a small case where the factorials are exact)."""
    a, n = 3.0, 5
    closed = (a ** n / math.factorial(n)) / sum(a ** k / math.factorial(k) for k in range(n + 1))
    assert erlang_b(n, a) == pytest.approx(closed, rel=1e-12)


def test_no_calls_need_no_seats_and_overload_is_refused() -> None:
    """An hour nobody called needs nobody; seats at or below the traffic never meet a target; a target of 100 %
    is refused rather than searched for ever."""
    assert seats_needed(0, AHT, WITHIN, TARGET) == 0
    assert (waiting_probability(10, 10.0), service_level(10, 10.0, AHT, WITHIN)) == (1.0, 0.0)
    assert average_speed_of_answer(9, 10.0, AHT) == math.inf
    with pytest.raises(ValueError, match="between 0 and 1"):
        seats_needed(10, AHT, WITHIN, 1.0)
    assert seats_needed(40, 1200, 60, 0.8) > traffic_of(40, 1200)  # long counselling calls: above the erlangs
