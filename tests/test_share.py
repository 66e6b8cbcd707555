"""Partners sharing a shift, and decisions that take the live facts (paused partners, closed options, callers waiting)
as plain arguments: pure, no store."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.facts import parse_instant
from routing import ConfigError, Routing, load_routing
from routing.preview import coverage_table, route_lines, snapshot
from routing.share import Live
from tests.test_live_controls import shared_routing

AT = parse_instant("2025-05-03T03:00:00+09:00")


@pytest.fixture
def weighted(tmp_path: Path) -> Routing:
    return load_routing(Path(shared_routing(tmp_path, "weighted")))


def first(routing: Routing, live: Live, option: str = "general", step: int = 0) -> str:
    d = routing.decide(AT, option, step, live=live)
    return d.partner.id if d.partner else "referrals"


def test_weighted_draw_follows_the_weights(weighted: Routing) -> None:
    """Weight 2 beside weight 1: the draw's lower two thirds go to the first partner, the rest to the second."""
    picks = [n / 300 for n in range(300)]
    got = [first(weighted, Live(pick=p)) for p in picks]
    assert (got.count("tsunagari"), got.count("aozora")) == (200, 100)


def test_the_partner_given_is_kept_for_the_next_steps(weighted: Routing) -> None:
    """A call given to the second partner tries the first one next, then the chain goes on as before."""
    d = weighted.decide(AT, "general", 0, live=Live(pick=0.9))
    assert (d.partner.id if d.partner else None, d.first) == ("aozora", "aozora")
    assert first(weighted, Live(pick=0.1, first="aozora"), step=1) == "tsunagari"
    assert first(weighted, Live(pick=0.1, first="aozora"), step=2) == "referrals"


def test_paused_partners_are_stepped_over(weighted: Routing) -> None:
    """A paused partner takes no calls: the draw is among the others, and later steps skip it too."""
    assert {first(weighted, Live(pick=p / 10, paused=frozenset({"tsunagari"}))) for p in range(10)} == {"aozora"}
    d = weighted.decide(AT, "women", 0, live=Live(paused=frozenset({"sakura"})))
    assert (d.partner.id if d.partner else None, d.step) == ("tsunagari", 1)


def test_least_waiting_without_counts_keeps_the_shift_order(tmp_path: Path) -> None:
    """With the store down (no counts), a least-waiting shift falls back to its order; with counts, the partner
    with fewest waiting per place."""
    routing = load_routing(Path(shared_routing(tmp_path, "least-waiting")))
    assert first(routing, Live(waiting=None)) == "tsunagari"
    assert first(routing, Live(waiting={"tsunagari": 2, "aozora": 1})) == "aozora"
    assert first(routing, Live(waiting={"tsunagari": 1, "aozora": 1})) == "tsunagari"


def test_a_closed_option_routes_by_the_general_line(weighted: Routing) -> None:
    """An option an operator closed is answered as the general line, as when nobody is on its shift."""
    d = weighted.decide(AT, "women", 0, live=Live(closed=frozenset({"women"}), pick=0.0))
    assert (d.option, d.partner.id if d.partner else None) == ("general", "tsunagari")


def test_preview_coverage_and_snapshot_show_a_shared_shift(weighted: Routing) -> None:
    """`ivr route`, the coverage table and the snapshot show both partners of a shared shift and how they share."""
    lines = route_lines(weighted, AT, option="general")
    assert "chain: tsunagari+aozora (weighted 2:1)" in lines[2]
    gw = next(c for c in weighted.campaigns if c.id == "gw-2025")
    assert "  general   2025-05-02 Fri 10:00 - 2025-05-07 Wed 10:00  tsunagari+aozora (weighted 2:1)" in \
        coverage_table(weighted, gw)
    assert "general tsunagari+aozora | under18 kodomo" in snapshot(weighted)


def test_an_unknown_share_rule_names_the_allowed_ones(tmp_path: Path) -> None:
    """A typo in `share:` stops the config check with the rules allowed, instead of silently routing in order."""
    path = Path(shared_routing(tmp_path, "roundrobin"))
    with pytest.raises(ConfigError) as err:
        load_routing(path)
    assert "'weighted' or 'least-waiting'" in str(err.value)


def test_a_paused_partners_callers_go_on_to_the_other_partner_of_the_shift(weighted: Routing) -> None:
    """The partner a shared shift gave a call is paused (phones down): the call's next step is the other partner of
    the shift, not the referral lines; the partner given stays the head of its order, stepped over while paused."""
    d = weighted.decide(AT, "general", 0, live=Live(pick=0.1))
    assert (d.partner.id if d.partner else None, d.first) == ("tsunagari", "tsunagari")
    for given, other in (("tsunagari", "aozora"), ("aozora", "tsunagari")):
        later = weighted.decide(AT, "general", 1, live=Live(pick=0.1, first=given, paused=frozenset({given})))
        assert (later.partner.id if later.partner else later.kind, later.step, later.first) == (other, 1, given)


def test_closing_an_urgent_option_keeps_its_callers_on_the_urgent_lane() -> None:
    """An operator closes the 2022 trial's urgent option: its callers go to the general line, still on the urgent
    lane (the partner's -urgent queue, taken first), never behind callers with less at stake."""
    routing = load_routing()
    trial = parse_instant("2022-07-08T12:00:00+09:00")
    d = routing.decide(trial, "suicidal", 0, live=Live(closed=frozenset({"suicidal"})))
    assert (d.option, d.partner.id if d.partner else None, d.urgent) == ("general", "tsunagari", True)
    assert routing.option_urgent(trial, "suicidal") and not routing.option_urgent(trial, "general")
    assert not routing.option_urgent(AT, "suicidal")  # GW 2025's plan has no such option
