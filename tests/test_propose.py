"""Provisional windows proposed by rule from the Japanese holiday calendar, and their YAML for review."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from routing.model import Campaign
from routing.propose import Proposal, is_workday, propose, propose_gw, propose_new_year, render_yaml


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def window(p: Proposal) -> tuple[str, str]:
    return p.opens.isoformat(), p.closes.isoformat()


def test_gw_2024_reproduces_the_announced_window() -> None:
    """The GW 2024 proposal would differ from the window the line actually ran (5/2 10:00 to 5/7 10:00)."""
    p = propose_gw(2024)
    assert window(p) == ("2024-05-02T10:00:00+09:00", "2024-05-07T10:00:00+09:00")
    assert p.id == "gw-2024"
    assert p.name == "ゴールデンウィーク 2024（仮）"


def test_gw_2025_reproduces_the_announced_window() -> None:
    """The GW 2025 proposal would differ from the window the line actually ran (5/2 10:00 to 5/7 10:00)."""
    assert window(propose_gw(2025)) == ("2025-05-02T10:00:00+09:00", "2025-05-07T10:00:00+09:00")


def test_gw_2027_covers_the_weekend_before_the_holidays() -> None:
    """GW 2027 would open on Saturday 5/1 or later instead of the Friday eve, missing the first weekend."""
    assert not is_workday(dt.date(2027, 5, 1)) and not is_workday(dt.date(2027, 5, 5))
    assert is_workday(dt.date(2027, 4, 30)) and is_workday(dt.date(2027, 5, 6))
    p = propose_gw(2027)
    assert window(p) == ("2027-04-30T10:00:00+09:00", "2027-05-06T10:00:00+09:00")
    assert p.id == "gw-2027"
    assert p.name == "ゴールデンウィーク 2027（仮）"


def test_new_year_2022_reproduces_the_confirmed_window() -> None:
    """The 2022-23 proposal would differ from the confirmed window (12/28 09:00 to 1/4 09:00)."""
    p = propose_new_year(2022)
    assert window(p) == ("2022-12-28T09:00:00+09:00", "2023-01-04T09:00:00+09:00")
    assert p.id == "newyear-2022"
    assert p.name == "年末年始 2022-23（仮）"


def test_new_year_closes_on_monday_when_jan_4_is_a_weekend() -> None:
    """The line would close on a Sunday while offices are still shut, instead of on Monday 1/5/2026."""
    assert dt.date(2026, 1, 4).weekday() == 6
    assert is_workday(dt.date(2026, 1, 5))
    assert window(propose_new_year(2025)) == ("2025-12-26T09:00:00+09:00", "2026-01-05T09:00:00+09:00")


def test_new_year_opens_on_friday_when_dec_28_is_a_weekend() -> None:
    """The line would open on Saturday 12/28/2024 instead of Friday 12/27, after offices have already shut."""
    assert dt.date(2024, 12, 28).weekday() == 5
    assert dt.date(2025, 1, 4).weekday() == 5
    assert window(propose_new_year(2024)) == ("2024-12-27T09:00:00+09:00", "2025-01-06T09:00:00+09:00")


def test_new_year_note_asks_for_a_decision_on_the_opening_day() -> None:
    """A reviewer would not be told that past New Year windows opened earlier than the rule says."""
    note = propose_new_year(2027).note
    assert "2023-24 on 12/15" in note
    assert "2025-26 on 12/25" in note
    assert "the opening day needs a person's decision" in note


def test_propose_gives_gw_then_new_year_of_the_year() -> None:
    """The proposal for 2027 would miss a window or give them out of order."""
    gw, new_year = propose(2027)
    assert window(gw) == ("2027-04-30T10:00:00+09:00", "2027-05-06T10:00:00+09:00")
    assert window(new_year) == ("2027-12-28T09:00:00+09:00", "2028-01-04T09:00:00+09:00")
    assert (gw.id, new_year.id) == ("gw-2027", "newyear-2027")
    assert new_year.name == "年末年始 2027-28（仮）"


def test_rendered_yaml_validates_as_provisional_campaigns() -> None:
    """Pasting the proposed entries into routing.yaml would fail validation or lose the provisional status."""
    checked = dt.date(2026, 11, 23)
    proposals = propose(2027)
    text = render_yaml(proposals, checked)
    assert text.startswith("# PROVISIONAL")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, list) and len(loaded) == 2
    campaigns = [Campaign.model_validate(d) for d in loaded]
    for campaign, p in zip(campaigns, proposals, strict=True):
        assert campaign.id == p.id
        assert campaign.name == p.name
        assert campaign.status == "provisional"
        assert campaign.checked == checked
        assert campaign.opens.utcoffset() == dt.timedelta(hours=9)
        assert campaign.opens == p.opens and campaign.closes == p.closes
        assert campaign.note == p.note
        assert campaign.source == ("not announced; proposed by rule from the Japanese holiday calendar; "
                                   "must be replaced by the announced window")
    assert "    opens: 2027-04-30T10:00:00+09:00\n" in text
    assert "    closes: 2028-01-04T09:00:00+09:00\n" in text


def test_rendered_yaml_keeps_awkward_text_intact() -> None:
    """A note with a colon, a hash or quotes would be cut short or break the YAML a reviewer pastes."""
    p = Proposal(id="gw-2030", name="名前: #1", opens=at("2030-05-02T10:00:00+09:00"),
                 closes=at("2030-05-07T10:00:00+09:00"), note='see: "x" # not a comment\nsecond line')
    (entry,) = yaml.safe_load(render_yaml([p], dt.date(2030, 1, 1)))
    campaign = Campaign.model_validate(entry)
    assert campaign.name == "名前: #1"
    assert campaign.note == 'see: "x" # not a comment\nsecond line'


def test_year_outside_the_calendar_is_refused() -> None:
    """A year the holiday calendar does not cover would yield windows that ignore every holiday."""
    with pytest.raises(ValueError, match="no Japanese holiday calendar for 2100"):
        propose_new_year(2099)
