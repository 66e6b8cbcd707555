"""Campaign plans: shifts (also past midnight), date exceptions, partner hours, overflow, and the checks on them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from routing import ConfigError, load_routing
from routing.check import warnings

SHIPPED = load_routing()


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_shift_past_midnight_covers_the_early_hours() -> None:
    """The gender-identity line staffed 16:00-02:00 answers at 01:59 and is gone at 02:00."""
    assert "gender" in SHIPPED.offered(at("2026-12-25T23:00:00+09:00"))
    assert "gender" in SHIPPED.offered(at("2026-12-26T01:59:00+09:00"))
    assert "gender" not in SHIPPED.offered(at("2026-12-26T02:00:00+09:00"))
    assert "gender" not in SHIPPED.offered(at("2026-12-26T15:59:00+09:00"))
    assert "gender" in SHIPPED.offered(at("2026-12-26T16:00:00+09:00"))


def test_option_closes_mid_window_to_the_minute() -> None:
    """The foreign-language line staffed 09:00-21:00 closes at 21:00 sharp; the general line stays."""
    before, after = at("2026-12-26T20:59:59+09:00"), at("2026-12-26T21:00:00+09:00")
    assert "foreign" in SHIPPED.offered(before)
    assert "foreign" not in SHIPPED.offered(after)
    assert [p.id for p in SHIPPED.chain(after, "foreign")] == ["tsunagari", "aozora"]


def test_date_exception_replaces_the_usual_shift() -> None:
    """On New Year's Eve the under-18 line runs until 02:00 on 1 January instead of closing at 22:00."""
    assert "under18" not in SHIPPED.offered(at("2026-12-30T22:00:00+09:00"))
    assert "under18" in SHIPPED.offered(at("2026-12-31T23:30:00+09:00"))
    assert "under18" in SHIPPED.offered(at("2027-01-01T01:59:00+09:00"))
    assert "under18" not in SHIPPED.offered(at("2027-01-01T02:00:00+09:00"))
    assert "under18" in SHIPPED.offered(at("2027-01-01T10:00:00+09:00"))


def test_second_partner_joins_the_general_line_in_the_evening() -> None:
    """From 18:00 to 02:00 a second partner is on the general shift; outside it, it is overflow only."""
    assert [p.id for p in SHIPPED.chain(at("2026-12-26T19:00:00+09:00"), "general")] == ["tsunagari", "aozora"]
    assert SHIPPED.decide(at("2026-12-26T19:00:00+09:00"), "general", 1).partner.id == "aozora"  # type: ignore[union-attr]


def base(**plan: Any) -> dict[str, Any]:
    """A small routing file: one GW 2025 window, three partners, the given plan."""
    return {
        "campaigns": [{"id": "gw", "name": "GW", "opens": "2025-05-02T10:00:00+09:00",
                       "closes": "2025-05-07T10:00:00+09:00", "status": "confirmed", "source": "test",
                       "checked": "2026-11-23"}],
        "partners": [
            {"id": "a", "name": "A", "kind": "queue", "queue": "qa"},
            {"id": "b", "name": "B", "kind": "queue", "queue": "qb", "hours": [{"from": "10:00", "to": "12:00"}]},
            {"id": "c", "name": "C", "kind": "phone", "number": "+15005550006"},
        ],
        "plans": {"default": plan or {"general": {"shifts": [{"partner": "a", "from": "00:00", "to": "24:00"}]}}},
        "referrals": [{"id": "r", "name": "R", "name_en": "R", "number": "0120-000-000",
                       "hours": [{"from": "00:00", "to": "24:00"}], "suits": ["all"], "source": "test",
                       "checked": "2026-11-23"}],
    }


def load(tmp_path: Path, data: dict[str, Any]):  # type: ignore[no-untyped-def]
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path, load_routing(path)


ALL_DAY = [{"partner": "a", "from": "00:00", "to": "24:00"}]


def test_partner_hours_limit_its_shift(tmp_path: Path) -> None:
    """A partner on shift all day but with its own hours 10:00-12:00 is offered only then."""
    _, r = load(tmp_path, base(general={"shifts": ALL_DAY},
                               women={"shifts": [{"partner": "b", "from": "00:00", "to": "24:00"}]}))
    assert "women" not in r.offered(at("2025-05-03T09:59:00+09:00"))
    assert "women" in r.offered(at("2025-05-03T10:00:00+09:00"))
    assert "women" not in r.offered(at("2025-05-03T12:00:00+09:00"))


def test_overflow_through_another_option(tmp_path: Path) -> None:
    """overflow: [option:x] tries x's partners, then the general line."""
    _, r = load(tmp_path, base(general={"shifts": ALL_DAY},
                               women={"shifts": [{"partner": "c", "from": "00:00", "to": "24:00"}],
                                      "overflow": ["option:disaster"]},
                               disaster={"shifts": [{"partner": "b", "from": "00:00", "to": "24:00"}]}))
    assert [p.id for p in r.chain(at("2025-05-03T11:00:00+09:00"), "women")] == ["c", "b", "a"]
    assert [p.id for p in r.chain(at("2025-05-03T13:00:00+09:00"), "women")] == ["c", "a"]


def test_overflow_cycle_is_reported(tmp_path: Path) -> None:
    """Options that overflow into each other are caught before a caller goes round in circles."""
    path = tmp_path / "routing.yaml"
    data = base(general={"shifts": ALL_DAY}, women={"shifts": ALL_DAY, "overflow": ["option:gender"]},
                gender={"shifts": ALL_DAY, "overflow": ["option:women"]})
    with pytest.raises(ConfigError) as e:
        load(tmp_path, data)
    assert [str(p) for p in e.value.problems] == [
        f"{path}: plans.default.women.overflow: overflow cycle: women -> gender -> women"]


def test_minutes_without_any_partner_are_reported(tmp_path: Path) -> None:
    """If the general line has nobody from 12:00 to 24:00, the check names those hours in JST."""
    path = tmp_path / "routing.yaml"
    with pytest.raises(ConfigError) as e:
        load(tmp_path, base(general={"shifts": [{"partner": "a", "from": "00:00", "to": "12:00"}]}))
    problems = [str(p) for p in e.value.problems]
    assert problems[0] == (f"{path}: campaigns[0]: from 2025-05-02 12:00 to 2025-05-03 00:00 JST option 'general' "
                           "(plan 'default') has no partner and no fallback partner: callers would only hear "
                           "referral lines")
    assert len(problems) == 5  # 2, 3, 4, 5 and 6 May


def test_unknown_references_are_reported(tmp_path: Path) -> None:
    """Unknown partners, options, referral lines and plans are named with what is allowed."""
    path = tmp_path / "routing.yaml"
    data = base(general={"shifts": ALL_DAY, "referrals": ["nope"], "overflow": ["option:ghost"]},
                women={"shifts": [{"partner": "z", "from": "00:00", "to": "24:00"}]})
    data["campaigns"][0]["plan"] = "special"
    with pytest.raises(ConfigError) as e:
        load(tmp_path, data)
    assert [f"{p.path}: {p.message}" for p in e.value.problems] == [
        "campaigns[0].plan: unknown plan 'special'; allowed: default",
        "plans.default.general.overflow[0]: unknown option 'option:ghost'; allowed: option:women",
        "plans.default.general.referrals[0]: unknown referral id 'nope'; allowed: r",
        "plans.default.women.shifts[0].partner: unknown partner id 'z'; allowed: a, b, c",
    ]
    assert str(path) == e.value.problems[0].file


def test_shift_of_zero_length_is_refused(tmp_path: Path) -> None:
    """A shift from 10:00 to 10:00 is a typo, not 24 hours."""
    with pytest.raises(ConfigError) as e:
        load(tmp_path, base(general={"shifts": [{"partner": "a", "from": "10:00", "to": "10:00"}]}))
    assert "plans.default.general.shifts[0]: Value error, 'from' and 'to' are both 10:00" in str(e.value)


def test_provisional_window_soon_is_a_warning() -> None:
    """Thirty days before a provisional window opens, the check asks for it to be confirmed."""
    soon = list(warnings(SHIPPED, "routing.yaml", at("2026-12-01T00:00:00+09:00")))
    assert [str(w) for w in soon] == [
        "routing.yaml: campaigns[6]: warning: 'newyear-2026' is provisional and opens in 24 days "
        "(2026-12-25T09:00:00+09:00): confirm it against the announcement"]
    assert list(warnings(SHIPPED, "routing.yaml", at("2026-11-01T00:00:00+09:00"))) == []


def test_referral_set_speaks_the_options_own_lines_first() -> None:
    """At the end of the women's chain the caller hears DV相談プラス before the general line."""
    d = SHIPPED.decide(at("2025-05-03T03:00:00+09:00"), "women", 9)
    assert d.kind == "referrals" and [r.id for r in d.referrals] == ["dv-plus", "yorisoi"]


def test_campaign_plan_must_fit_its_menu_layout(tmp_path: Path) -> None:
    """A campaign whose plan routes an option its key layout has no key for is refused, naming both."""
    from menus import load_menu

    layouts = load_menu().layouts
    data = base(general={"shifts": ALL_DAY}, suicidal={"shifts": ALL_DAY})
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_routing(path, layouts)
    assert [f"{p.path}: {p.message}" for p in e.value.problems] == [
        "campaigns[0]: plan 'default' routes option 'suicidal', which menu layout 'default' has no key for; "
        "allowed: disaster, foreign, gender, general, under18, women"]
    data["campaigns"][0]["menu"] = "trial-2022"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert load_routing(path, layouts).window_at(at("2025-05-03T00:00:00+09:00")) is not None
    data["campaigns"][0]["menu"] = "trial-2021"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown menu layout 'trial-2021'; allowed: default, trial-2022"):
        load_routing(path, layouts)


def test_provisional_window_in_the_past_is_a_warning() -> None:
    """A provisional window that is already over was never replaced by the announced one: the check says so."""
    late = [str(w) for w in warnings(SHIPPED, "routing.yaml", at("2027-02-01T00:00:00+09:00"))]
    assert late == ["routing.yaml: campaigns[6]: warning: 'newyear-2026' is provisional and already over "
                    "(2027-01-04T09:00:00+09:00): replace it with the announced window or remove it"]


def test_partner_without_contact_is_refused(tmp_path: Path) -> None:
    """A queue partner with no queue name cannot be reached: the error says what it needs."""
    data = base(general={"shifts": ALL_DAY})
    del data["partners"][0]["queue"]
    with pytest.raises(ConfigError) as e:
        load(tmp_path, data)
    assert [f"{p.path}: {p.message}" for p in e.value.problems] == [
        "partners[0]: Value error, a partner of kind 'queue' needs 'queue' (the Twilio queue name)"]


def test_referral_without_source_or_checked_date_is_refused(tmp_path: Path) -> None:
    """Every referral line must say where its number and hours come from and when they were checked."""
    data = base(general={"shifts": ALL_DAY})
    del data["referrals"][0]["source"]
    del data["referrals"][0]["checked"]
    with pytest.raises(ConfigError) as e:
        load(tmp_path, data)
    assert [f"{p.path}: {p.message}" for p in e.value.problems] == [
        "referrals[0].source: required key is missing", "referrals[0].checked: required key is missing"]


def test_language_option_needs_someone_who_takes_other_languages(tmp_path: Path) -> None:
    """With only Japanese speakers in its chain the language option stays closed; an interpreter opens it."""
    data = base(general={"shifts": ALL_DAY}, foreign={"shifts": [{"partner": "b", "from": "00:00", "to": "24:00"}]})
    data["partners"][1]["languages"] = ["en", "ja"]
    _, r = load(tmp_path, data)
    night = at("2025-05-03T03:00:00+09:00")
    assert r.offered(night, "foreign") == frozenset({"general"})  # b (English) is outside its own hours
    assert r.offered(at("2025-05-03T11:00:00+09:00"), "foreign") == frozenset({"general", "foreign"})
    data["partners"][2]["interpreter"] = True
    data["plans"]["default"]["general"]["overflow"] = ["c"]
    _, r = load(tmp_path, data)
    assert r.offered(night, "foreign") == frozenset({"general", "foreign"})
    assert r.offered(night) == frozenset({"general"})
    d = r.decide(night, "foreign", 0, "pt")
    assert (d.kind, d.partner.id if d.partner else None, d.interpreter) == ("phone", "c", True)


def test_urgent_lane_exists_without_an_urgent_option(tmp_path: Path) -> None:
    """With no option marked urgent, a counsellor still takes the -urgent queue first (a caller in crisis is on it)."""
    _, r = load(tmp_path, base())
    night = at("2025-05-03T03:00:00+09:00")
    assert r.urgent_option(night) is None
    assert r.queues_of("a") == ["qa-urgent", "qa"]
    assert r.queues_of("c") == []  # a phone partner has no queue
    assert r.decide(night, "general", urgent=True).urgent is True


def test_referral_of_kind_chat_needs_no_number(tmp_path: Path) -> None:
    """A chat line loads without a number and is offered online only; a phone line without one is refused."""
    data = base()
    data["referrals"].append({"id": "chat", "name": "C", "name_en": "C", "kind": "chat", "url": "https://chat.example/",
                              "hours": [{"from": "00:00", "to": "24:00"}], "suits": ["general"], "source": "test",
                              "checked": "2026-11-30"})
    _, r = load(tmp_path, data)
    night = at("2025-05-03T03:00:00+09:00")
    assert [x.id for x in r.online_referrals(night, "general")] == ["chat"]
    assert [x.id for x in r.open_referrals(night, "general", limit=5)] == ["r"]
    del data["referrals"][0]["number"]
    path = tmp_path / "routing.yaml"
    with pytest.raises(ConfigError) as e:
        load(tmp_path, data)
    assert [str(p) for p in e.value.problems] == [
        f"{path}: referrals[0]: Value error, a referral of kind 'phone' needs 'number' (as callers dial it, "
        "e.g. 0120-279-338)"]
