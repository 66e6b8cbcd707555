"""Campaign reports: totals that match the calls made, the published form, and the embedded store across runs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from rq import Queue, SimpleWorker

from ivr.cli import main
from tests.support import CALLER, AppFactory, call

OPEN = "2025-05-03T03:00:00+09:00"


def table(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return {(r["date"], r["option"]): r for r in csv.DictReader(f)}


def test_report_totals_match_the_calls(make_app: AppFactory, redis_url: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Seven calls on 3 May: the report counts them per option, answered, overflowed, unique and withheld."""
    app = make_app(OPEN)
    for keys, kwargs in [(["1"], {}), (["1"], {}), (["2"], {}), (["5"], {"queue_result": "queue-full"}),
                         (["6"], {"dial_status": "no-answer"}), (["4"], {"caller": "anonymous"}),
                         (["3", "2"], {"caller": "+819055556666"})]:
        call(app, keys, **kwargs)
    client = redis.Redis.from_url(redis_url)
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["report", "--campaign", "gw-2025", "--out", str(tmp_path)]) == 0
    t = table(tmp_path / "report-gw-2025.csv")
    day = {k[1]: r for k, r in t.items() if k[0] == "2025-05-03"}
    assert (day["general"]["calls"], day["general"]["answered"], day["general"]["answer_rate"]) == ("2", "2", "1.00")
    assert (day["women"]["calls"], day["women"]["answered"], day["women"]["overflowed"]) == ("1", "0", "1")
    assert (day["women"]["referred"], day["disaster"]["overflowed"]) == ("1", "1")
    assert day["all"]["calls"] == "7" and day["all"]["unique_callers"] == "2" and day["all"]["withheld_calls"] == "1"
    assert t[("2025-05-02", "all")]["calls"] == "0"
    assert (tmp_path / "calls-per-hour-gw-2025.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["report", "--campaign", "gw-2025", "--out", str(tmp_path), "--publish"]) == 0
    published = {k[1]: r for k, r in table(tmp_path / "report-gw-2025-published.csv").items()
                 if k[0] == "2025-05-03"}
    assert (published["general"]["calls"], published["general"]["answer_rate"]) == ("<5", "")
    assert (published["all"]["calls"], published["all"]["unique_callers"]) == ("7", "<5")
    for f in tmp_path.iterdir():
        text = f.read_bytes()
        for number in (CALLER, "+819055556666"):
            assert number[1:].encode() not in text and number[-8:].encode() not in text


def test_report_after_ivr_call_on_the_embedded_store(tmp_path: Path) -> None:
    """A newcomer's `ivr call`s, then `ivr report`, with no Redis: the report counts those calls."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env["IVR_STATE_DIR"] = str(tmp_path / "state")
    for keys in (["1"], ["5"]):
        done = subprocess.run([sys.executable, "-m", "ivr.cli", "call", "--at", OPEN, "--press", *keys], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "report", "--campaign", "gw-2025", "--out",
                           str(tmp_path / "out")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    day = table(tmp_path / "out" / "report-gw-2025.csv")
    assert (day[("2025-05-03", "all")]["calls"], day[("2025-05-03", "women")]["calls"]) == ("2", "1")
    state = (tmp_path / "state" / "embedded-state.json").read_text()
    assert "9000000000" not in state and "ivr:call:" not in state


def test_report_of_unknown_campaign(capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped campaign id is named with the known ones."""
    assert main(["report", "--campaign", "gw-2031"]) == 2
    assert "no campaign 'gw-2031'; known: trial-2022," in capsys.readouterr().err
