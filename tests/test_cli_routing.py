"""The operators' routing tools: config check, route preview, golden snapshot, coverage chart, window proposal."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ivr.cli import main
from ivr.tools.cli_files import snapshot_file
from routing import load_routing
from routing.model import Campaign
from routing.preview import snapshot

ROUTING_FILE = Path(__file__).parents[1] / "routing" / "routing.yaml"


def test_golden_snapshot_matches_the_config() -> None:
    """Every option's decision at every hour of every window is frozen; a config change must update the file."""
    expected = snapshot_file(ROUTING_FILE).read_text(encoding="utf-8")
    assert snapshot(load_routing(), "foreign") == expected  # foreign: the menu's choose-language option


def test_snapshot_lines_read_as_decisions() -> None:
    """The snapshot says who answers each option, and which options are closed, hour by hour."""
    lines = snapshot(load_routing()).splitlines()
    assert "== newyear-2026 (provisional) 2026-12-25 Fri 09:00 to 2027-01-04 Mon 09:00, plan 'newyear-2026'" in lines
    assert ("2026-12-25 Fri 09:00  general tsunagari | under18 closed>tsunagari | foreign worldbridge | "
            "gender closed>tsunagari | women sakura | disaster hinata") in lines
    assert ("2027-01-01 Fri 01:00  general tsunagari | under18 kodomo | foreign closed>tsunagari | gender niji | "
            "women sakura | disaster hinata") in lines


def test_snapshot_check_fails_on_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr snapshot --check` exits 1 when the file no longer matches the config."""
    stale = tmp_path / "snap.txt"
    stale.write_text("old\n", encoding="utf-8")
    assert main(["snapshot", "--check", "--out", str(stale)]) == 1
    assert "does not match the config: run `make snapshot`" in capsys.readouterr().err
    assert main(["snapshot", "--out", str(stale)]) == 0
    assert main(["snapshot", "--check", "--out", str(stale)]) == 0


def test_config_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Clean config exits 0; a provisional window within 30 days exits 3 (warning); a broken file exits 1."""
    assert main(["config", "check", "--at", "2026-11-01T00:00:00+09:00"]) == 0
    assert main(["config", "check", "--at", "2026-12-01T00:00:00+09:00"]) == 3
    assert "warning: 'newyear-2026' is provisional and opens in 24 days" in capsys.readouterr().err
    assert main(["config", "check", "--at", "2026-12-01T00:00:00+09:00", "--allow-warnings"]) == 0
    broken = tmp_path / "routing.yaml"
    broken.write_text(ROUTING_FILE.read_text(encoding="utf-8").replace("kind: phone", "kind: pager"),
                      encoding="utf-8")
    assert main(["config", "check", "--routing", str(broken)]) == 1
    assert f"{broken}: partners[6].kind: Input should be 'queue' or 'phone'" in capsys.readouterr().err


def test_route_preview(capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr route --at` shows who answers each option, the chain, and the phone and online lines open at its end."""
    assert main(["route", "--at", "2026-12-27T10:00:00+09:00", "--option", "general"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "at 2026-12-27 Sun 10:00 JST",
        "campaign: newyear-2026 (provisional), plan 'newyear-2026'",
        "  general   offered          chain: tsunagari > aozora",
        "                             then:  よりそいホットライン, いのちSOS",
        "                             online: あなたのいばしょ (chat), いのちの電話 インターネット相談 (mail)"]


def test_route_preview_marks_the_interpreter(capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr route --language th` marks aozora as taking Thai through its interpreter, and the foreign option as open."""
    assert main(["route", "--at", "2026-12-27T03:00:00+09:00", "--option", "foreign", "--language", "th"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "at 2026-12-27 Sun 03:00 JST",
        "campaign: newyear-2026 (provisional), plan 'newyear-2026'",
        "  foreign   via interpreter  chain: tsunagari (no th) > aozora (interpreter)",
        "                             then:  よりそいホットライン",
        "                             online: あなたのいばしょ (chat)"]
    assert main(["route", "--at", "2026-12-27T10:00:00+09:00", "--option", "foreign", "--language", "th"]) == 0
    assert capsys.readouterr().out.splitlines()[2] == (
        "  foreign   offered          chain: worldbridge (no th) > tsunagari (no th) > aozora (interpreter)")


def test_route_preview_when_closed(capsys: pytest.CaptureFixture[str]) -> None:
    """Outside every window the preview says so, when the next window opens, and what is open now."""
    assert main(["route", "--at", "2026-11-24T03:00:00+09:00"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "at 2026-11-24 Tue 03:00 JST", "closed: no campaign window is open",
        "next window: newyear-2026 opens 2026-12-25 Fri 09:00 (provisional)",
        "open referral lines: よりそいホットライン 0120-279-338",
        "open online lines: いのちの電話 インターネット相談 (mail), あなたのいばしょ (chat)"]


def test_coverage_table_and_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr coverage` prints the stretches per option and writes a PNG chart."""
    out = tmp_path / "cov.png"
    assert main(["coverage", "--campaign", "newyear-2026", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "  under18   2026-12-31 Thu 10:00 - 2027-01-01 Fri 02:00  kodomo" in lines
    assert "  gender    2026-12-25 Fri 09:00 - 2026-12-25 Fri 16:00  NOT OFFERED (callers go to general)" in lines
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_coverage_of_unknown_campaign(capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped campaign id is named with the known ones."""
    assert main(["coverage", "--campaign", "gw-2031"]) == 2
    assert "no campaign 'gw-2031'; known: trial-2022, newyear-2022," in capsys.readouterr().err


def test_propose_prints_reviewable_config(capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr campaign propose --year 2027` prints provisional windows that validate as campaigns."""
    assert main(["campaign", "propose", "--year", "2027", "--at", "2026-11-23T12:00:00+09:00"]) == 0
    entries = yaml.safe_load(capsys.readouterr().out)
    campaigns = [Campaign.model_validate(e) for e in entries]
    assert [(c.id, c.opens.isoformat(), c.closes.isoformat(), c.status) for c in campaigns] == [
        ("gw-2027", "2027-04-30T10:00:00+09:00", "2027-05-06T10:00:00+09:00", "provisional"),
        ("newyear-2027", "2027-12-28T09:00:00+09:00", "2028-01-04T09:00:00+09:00", "provisional")]
