"""Emergency flags: what a counsellor records, `ivr emergency list`, and the two-supervisor reveal of a flagged
caller's number, asked of Twilio's API (Prism serving Twilio's own description) and kept nowhere."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import redis
import structlog
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from common.facts import parse_instant
from ivr.cli import main
from ivr.logs import configure
from ivr.state import emergency
from tests.support import CALLER, TOKEN, AppFactory
from tests.test_counselor import EXAMPLE, OPEN, app_with_counsellors, counsellor_call
from tests.test_handover import waiting
from tests.twilio_api import ACCOUNT, TwilioApi

NUMBER = "+13051416799"  # the `from` of Twilio's example Call: what Prism answers to every Call fetch
REVEAL = ["--by", "佐藤", "--approved-by", "鈴木", "--reason", "自傷の危険、地域の支援機関へ"]


def at(hours: float) -> str:
    return (parse_instant(OPEN) + dt.timedelta(hours=hours)).isoformat()


@pytest.fixture(autouse=True)
def _logs_outside_capsys() -> None:
    """structlog writes to the sys.stderr of its first configuration: never to capsys's, closed after the test."""
    if not structlog.is_configured():
        configure("info", "json")


@pytest.fixture
def partners(tmp_path: Path) -> Path:
    path = tmp_path / "partners.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8") + '\nsupervisors: ["佐藤", "鈴木"]\n', encoding="utf-8")
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, redis_url: str, partners: Path, twilio_api: TwilioApi) -> None:
    for name, value in {"REDIS_URL": redis_url, "IVR_PARTNERS_FILE": str(partners), "TWILIO_AUTH_TOKEN": TOKEN,
                        "TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_URL": twilio_api.url,
                        "IVR_CLOCK": at(1)}.items():
        monkeypatch.setenv(name, value)
    twilio_api.mark()


def flag_a_call(make_app: AppFactory, partners: Path, key: str) -> tuple[object, str, list[str]]:
    """A caller on the general line, a counsellor who took them presses `key` after the conversation: the app,
    the caller's CallSid and what the counsellor heard."""
    app = app_with_counsellors(make_app, partners=partners)
    caller = waiting(app, ["1"])
    counsellor = counsellor_call(app, ["1001", "482193", key, "-"], dequeued=caller)
    return app, caller, counsellor.heard()


def everything_in(redis_url: str) -> str:
    """Every key and value in the store, as text."""
    client = redis.Redis.from_url(redis_url)
    out = []
    for k in client.scan_iter():
        kind = client.type(k).decode()
        value = (client.get(k) if kind == "string" else client.hgetall(k) if kind == "hash"
                 else client.lrange(k, 0, -1) if kind == "list" else client.zrange(k, 0, -1) if kind == "zset"
                 else client.smembers(k) if kind == "set" else b"")
        out.append(f"{k!r} {value!r}")
    return "\n".join(out)


def test_a_counsellor_flags_the_caller_and_supervisors_see_it(make_app: AppFactory, partners: Path, cli_env: None,
                                                              redis_url: str,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """After the conversation 7 flags the call (consented): the flag holds the partner, the option, the time and
    the choice, nothing else, and `ivr emergency list` shows it."""
    app, caller, heard = flag_a_call(make_app, partners, "7")
    assert "緊急対応の記録をしました。責任者が対応します。" in heard
    raw = redis.Redis.from_url(redis_url).hgetall(f"ivr:emergency:{caller}")
    assert {k.decode(): v.decode() for k, v in raw.items()} == {
        "partner": "tsunagari", "option": "general", "at": parse_instant(OPEN).isoformat(), "consent": "yes"}
    assert main(["emergency", "list"]) == 0
    listed = capsys.readouterr().out  # the clock runs on from IVR_CLOCK: a minute may have begun
    assert listed.startswith(f"{caller}  2025-05-03 03:00 JST  partner tsunagari  option general  consented  "
                             "reveal allowed for 2") and listed.count("\n") == 1
    metrics = app.test_client().get("/metrics").get_data(as_text=True)  # type: ignore[attr-defined]
    assert 'ivr_emergency_flags_total{consent="yes"} 1.0' in metrics and "ivr_emergency_reveals_total 0.0" in metrics


def test_the_reveal_needs_two_supervisors_within_a_day_and_keeps_the_number_nowhere(
        make_app: AppFactory, partners: Path, cli_env: None, redis_url: str, twilio_api: TwilioApi,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused with one supervisor, with someone not listed, and after 24 hours, without asking Twilio; accepted with
    two: the number asked of Twilio is printed once, the audit line names both and the reason but not the number,
    and afterwards neither Redis nor any log line holds a number."""
    with capture_logs(processors=[merge_contextvars]) as logs:
        app, caller, _ = flag_a_call(make_app, partners, "7")
        capsys.readouterr()
        twilio_api.mark()  # the login asked Twilio to move the caller to the desk (tests/test_desk_move.py)
        one = main(["emergency", "reveal", caller, "--by", "佐藤", "--approved-by", "佐藤", "--reason", "x"])
        stranger = main(["emergency", "reveal", caller, "--by", "佐藤", "--approved-by", "田中", "--reason", "x"])
        monkeypatch.setenv("IVR_CLOCK", at(24.5))
        late = main(["emergency", "reveal", caller, *REVEAL])
        refused = capsys.readouterr()
        assert (one, stranger, late) == (2, 2, 2) and refused.out == ""
        assert refused.err.splitlines() == [
            "ivr emergency reveal: refused: two different supervisors are needed (--by and --approved-by)",
            "ivr emergency reveal: refused: --by and --approved-by must both be supervisors listed in the partners "
            "file (supervisors:)",
            "ivr emergency reveal: refused: the flag is older than 24 hours"]
        assert twilio_api.requests() == []

        monkeypatch.setenv("IVR_CLOCK", at(23))
        assert main(["emergency", "reveal", caller, *REVEAL]) == 0
        shown = capsys.readouterr().out
        assert shown.count(NUMBER) == 1 and shown.startswith(f"caller's number for {caller}: {NUMBER}\n")
        assert twilio_api.requests() == [("GET", f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{caller}.json")]
        assert twilio_api.violations() == []
        again = main(["emergency", "reveal", caller, *REVEAL])
        assert again == 2 and "was revealed before" in capsys.readouterr().err
    audit = [e for e in logs if e["event"] == "emergency_reveal"]
    assert [(e["by"], e["approved_by"], e["reason"], e["life_threatening"], e["call"]) for e in audit] == [
        ("佐藤", "鈴木", "自傷の危険、地域の支援機関へ", False, caller)]
    stored = [json.loads(x) for x in redis.Redis.from_url(redis_url).lrange("ivr:emergency-audit", 0, -1)]
    assert [(e["by"], e["approved_by"], e["reason"]) for e in stored] == [("佐藤", "鈴木", "自傷の危険、地域の支援機関へ")]
    kept = everything_in(redis_url) + json.dumps(logs, ensure_ascii=False, default=str)
    assert [n for n in (NUMBER, NUMBER[2:], CALLER, CALLER[3:]) if n in kept] == []
    metrics = app.test_client().get("/metrics").get_data(as_text=True)  # type: ignore[attr-defined]
    assert "ivr_emergency_reveals_total 1.0" in metrics  # IvrEmergencyNumberRevealed fires on it


def test_without_consent_only_a_life_threatening_reveal_is_allowed(
        make_app: AppFactory, partners: Path, cli_env: None, redis_url: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    """8 flags the call without consent: a reveal is refused unless --life-threatening is given, which is audited."""
    _, caller, _ = flag_a_call(make_app, partners, "8")
    assert emergency.flag(redis.Redis.from_url(redis_url), caller).consent == "no"  # type: ignore[union-attr]
    capsys.readouterr()
    with capture_logs():
        assert main(["emergency", "reveal", caller, *REVEAL]) == 2
        assert capsys.readouterr().err == ("ivr emergency reveal: refused: the caller did not consent; only with "
                                           "--life-threatening\n")
        assert main(["emergency", "reveal", caller, *REVEAL, "--life-threatening"]) == 0
    assert NUMBER in capsys.readouterr().out
    (entry,) = [json.loads(x) for x in redis.Redis.from_url(redis_url).lrange("ivr:emergency-audit", 0, -1)]
    assert (entry["consent"], entry["life_threatening"]) == ("no", True)
