"""A simulated campaign day: no caller's number anywhere afterwards, and the report adds up to the calls made."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import redis
from rq import Queue, SimpleWorker
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from ivr import jobs
from ivr.cli import main
from ivr.standin import InProcess, StandIn
from tests.support import BASE, TOKEN, AppFactory, call
from tests.test_referrals import RecordingTwilio

CALLERS = [f"+8190{n:08d}" for n in (12340001, 23450002, 34560003, 45670004, 56780005)]
SCRIPT = [(["1"], {}), (["2"], {}), (["5"], {"queue_result": "queue-full"}), (["3", "4"], {}),
          (["6"], {"dial_status": "no-answer"}), (["7", "8", "9", "4"], {}), (["5", "2"], {"queue_result": "queue-full"})]


def forms(number: str) -> list[str]:
    """Every way a number could leak: E.164, without +, national, national with dashes, the last 8 digits."""
    national = "0" + number[3:]
    return [number, number[1:], national, f"{national[:3]}-{national[3:7]}-{national[7:]}", number[-8:]]


def test_a_campaign_day_leaves_no_number_and_adds_up(make_app: AppFactory, redis_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls through the day (SMS, overflow, counsellors, a withheld caller): no number in logs, metrics, Redis or
    report, and the report's total is the number of calls."""
    sms = {"TWILIO_ACCOUNT_SID": "AC" + "f" * 32, "IVR_SMS_FROM": "+15005550006"}
    for k, v in {**sms, "TWILIO_AUTH_TOKEN": TOKEN}.items():
        monkeypatch.setenv(k, v)
    partners = tmp_path / "partners.yaml"
    partners.write_text('counsellors:\n  - partner: tsunagari\n    numbers: ["+15005550010"]\n    pin: "482193"\n',
                        encoding="utf-8")
    placed = 0
    metrics_text = ""
    with capture_logs(processors=[merge_contextvars]) as logs:
        for hour in (3, 9, 14, 21):
            app = make_app(f"2025-05-03T{hour:02d}:00:00+09:00", IVR_PARTNERS_FILE=str(partners), **sms)
            for i, (keys, kwargs) in enumerate(SCRIPT):
                caller = CALLERS[(hour + i) % len(CALLERS)]
                monkeypatch.setattr(jobs, "HTTP_CLIENT", RecordingTwilio(caller))
                call(app, keys, caller=caller, **kwargs)
                placed += 1
            call(app, ["1"], caller="anonymous")
            placed += 1
            StandIn(InProcess(app), TOKEN, BASE, keys=["482193", "-"], caller="+15005550010").call(
                "/counselor/incoming")
            client = redis.Redis.from_url(redis_url)
            SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
            metrics_text += app.test_client().get("/metrics").get_data(as_text=True)
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["report", "--campaign", "gw-2025", "--out", str(tmp_path / "report")]) == 0
    assert main(["report", "--campaign", "gw-2025", "--out", str(tmp_path / "report"), "--publish"]) == 0

    places = {"logs": json.dumps(logs, ensure_ascii=False, default=str), "metrics": metrics_text}
    client = redis.Redis.from_url(redis_url)
    places["redis"] = "".join(repr(k) + repr(client.dump(k)) for k in client.scan_iter())
    for f in (tmp_path / "report").iterdir():
        places[f.name] = f.read_bytes().decode("latin-1")
    assert len(places) == 9 and all(len(text) > 500 for text in places.values())  # logs, metrics, redis, 6 files
    assert '"event": "webhook"' in places["logs"] and "ivr:agg:gw-2025:2025-05-03" in places["redis"]
    for where, text in places.items():
        for number in CALLERS:
            for form in forms(number):
                assert form not in text, f"{form} found in {where}"

    with (tmp_path / "report" / "report-gw-2025.csv").open(encoding="utf-8") as f:
        day = {r["option"]: r for r in csv.DictReader(f) if r["date"] == "2025-05-03"}
    assert int(day["all"]["calls"]) == placed
    assert int(day["all"]["withheld_calls"]) == 4
    assert int(day["all"]["unique_callers"]) == len(CALLERS)
    assert sum(int(r["calls"]) for o, r in day.items() if o != "all") == placed
