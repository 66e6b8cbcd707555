"""Referral SMS only where it is safe: Japanese mobile numbers, one a number a day, an hourly cap, Twilio's refusals
kept without the number, the RQ worker's log scrubbed, and a text that names no DV or suicide line.

The caller-number lookup and the send go through twilio's own HTTP client to Prism serving Twilio's API description
(tests/twilio_api.py), which refuses any request the description does not allow. Its example call is always from
EXAMPLE_CALLER, a US number: where a test needs the message sent, it widens only the Japanese-mobile rule to take that
number. The hourly cap (three different numbers) and Twilio's refusal (a 400 naming the number) need answers the
description's examples do not give, so those use a fake of Twilio's REST API (`Twilio` below)."""

from __future__ import annotations

import base64
import importlib
import json
import logging
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import structlog
from prometheus_client import CollectorRegistry
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.registry import FailedJobRegistry
from twilio.http import HttpClient
from twilio.http.response import Response

from ivr.state import jobs
from tests.support import CALLER, TOKEN, AppFactory, call
from tests.twilio_api import EXAMPLE_CALLER, Sending, TwilioApi

OPEN = "2025-05-03T03:00:00+09:00"  # inside the Golden Week 2025 window
SMS = {"TWILIO_ACCOUNT_SID": "AC" + "f" * 32, "IVR_SMS_FROM": "+15005550006"}
KEYS_SMS = "もう一度聞くときは1を、SMSで受け取るときは2を押してください。"
KEYS_NO_SMS = "もう一度聞くときは、1を押してください。"
SENT = "SMSでお送りします。"
REFUSED = "Twilio refused the message (error 21211, HTTP 400)"


class Twilio(HttpClient):
    """Twilio's REST API as the SMS job meets it: each call's number by CallSid; a message recorded, or refused as
    Twilio refuses one (400, a JSON body whose message names the number)."""

    def __init__(self, refuse: bool = False):
        super().__init__(logging.getLogger("fake-twilio"), False)
        self.callers: dict[str, str] = {}
        self.refuse = refuse
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, url: str, params: Any = None, data: Any = None, headers: Any = None,
                auth: Any = None, timeout: Any = None, allow_redirects: bool = False) -> Response:
        if method == "GET" and "/Calls/" in url:
            sid = url.rsplit("/", 1)[-1].removesuffix(".json")
            return Response(200, json.dumps({"sid": sid, "from": self.callers[sid], "to": "+81120494949",
                                             "status": "in-progress"}))
        if method == "POST" and url.endswith("/Messages.json"):
            if self.refuse:
                return Response(400, json.dumps({
                    "code": 21211, "message": f"The 'To' number {data['To']} is not a valid phone number.",
                    "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}))
            self.sent.append((data["To"], data["Body"]))
            return Response(201, json.dumps({"sid": "SM" + "0" * 32, "status": "queued", "body": data["Body"]}))
        return Response(404, "{}")


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch) -> Twilio:
    """The job's environment (the worker's: SMS configured, the clock at OPEN) and a fake Twilio it talks to."""
    for k, v in {**SMS, "TWILIO_AUTH_TOKEN": TOKEN, "IVR_CLOCK": OPEN}.items():
        monkeypatch.setenv(k, v)
    fake = Twilio()
    monkeypatch.setattr(jobs, "HTTP_CLIENT", fake)
    return fake


@pytest.fixture
def prism(twilio_api: TwilioApi, monkeypatch: pytest.MonkeyPatch) -> tuple[TwilioApi, Sending]:
    """The job's environment (SMS configured, the clock at OPEN) pointed at the mock of Twilio's API description,
    through twilio's own HTTP client (which also keeps what it sent); the mock's log read from here on."""
    for k, v in {**SMS, "TWILIO_AUTH_TOKEN": TOKEN, "IVR_CLOCK": OPEN, "TWILIO_API_URL": twilio_api.url}.items():
        monkeypatch.setenv(k, v)
    sending = Sending()
    monkeypatch.setattr(jobs, "HTTP_CLIENT", sending)
    twilio_api.mark()
    return twilio_api, sending


def example_caller_is_mobile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Japanese-mobile rule, widened to the description's example caller (and nothing else changed)."""
    monkeypatch.setattr(jobs, "JAPANESE_MOBILE", re.compile(rf"{jobs.JAPANESE_MOBILE.pattern}|{re.escape(EXAMPLE_CALLER)}"))


def calls_path(call_sid: str) -> tuple[str, str]:
    """The lookup of one call's details, as the mock receives it."""
    return "GET", f"/2010-04-01/Accounts/{SMS['TWILIO_ACCOUNT_SID']}/Calls/{call_sid}.json"


MESSAGES = ("POST", f"/2010-04-01/Accounts/{SMS['TWILIO_ACCOUNT_SID']}/Messages.json")


@pytest.fixture
def worker_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], None]]:
    """Sets up, when called in the test (so it writes to capsys's stream), the logging `rq worker -c ivr.worker`
    sets up: the module imported as RQ imports it. Put back as it was after the test."""
    monkeypatch.setenv("IVR_LOG_FORMAT", "json")
    monkeypatch.setenv("IVR_LOG_LEVEL", "info")
    root = logging.getLogger()
    named = [logging.getLogger(n) for n in ("rq.worker", "rq.job", "twilio")]
    saved = (root.handlers[:], root.level, [(x.handlers[:], x.propagate, x.level) for x in named])
    config, was_configured = structlog.get_config(), structlog.is_configured()

    def start() -> None:
        sys.modules.pop("ivr.worker", None)
        importlib.import_module("ivr.worker")

    yield start
    sys.modules.pop("ivr.worker", None)
    root.handlers[:], level, states = saved
    root.setLevel(level)
    for logger, (handlers, propagate, own_level) in zip(named, states, strict=True):
        logger.handlers[:], logger.propagate = handlers, propagate
        logger.setLevel(own_level)
    if was_configured:
        structlog.configure(**config)
    else:
        structlog.reset_defaults()


def run_jobs(client: redis.Redis) -> None:
    """What `rq worker --burst` does, in this process (so the fake Twilio is the one used)."""
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)


def outcomes() -> dict[str, float]:
    """ivr_sms_outcomes_total by reason, as a fresh registry reads it."""
    registry = CollectorRegistry()
    registry.register(jobs.sms_outcomes())
    return {r: registry.get_sample_value("ivr_sms_outcomes_total", {"reason": r}) or 0.0 for r in jobs.SMS_REASONS}


def counted(before: dict[str, float]) -> dict[str, float]:
    """What each reason was counted since `before`."""
    return {r: v - before[r] for r, v in outcomes().items()}


def sms_call(app: object, caller: str = CALLER) -> Any:
    """A call that reaches the busy ending (the women's line, its queue full) and presses 2 there."""
    return call(app, ["5", "2"], queue_result="queue-full", caller=caller)


def values_of(client: redis.Redis, k: bytes) -> list[Any]:
    """What one key holds, whatever its type."""
    kind = client.type(k).decode()
    if kind == "string":
        return [client.get(k)]
    if kind == "hash":
        return [x for pair in client.hgetall(k).items() for x in pair]
    if kind == "list":
        return list(client.lrange(k, 0, -1))
    if kind == "set":
        return list(client.smembers(k))
    if kind == "zset":
        return list(client.zrange(k, 0, -1))
    if kind == "stream":
        return [x for _, fields in client.xrange(k) for pair in fields.items() for x in pair]
    return [client.dump(k)]


def everything_in(client: redis.Redis) -> list[str]:
    """Every key and value in Redis as text; compressed values opened (RQ's job data, and its results' exc_string
    in base64)."""
    texts = []
    for k in client.scan_iter():
        for value in (k, *values_of(client, k)):
            texts.append(value.decode(errors="replace") if isinstance(value, bytes) else str(value))
            for opened in (lambda v: v, lambda v: base64.b64decode(v, validate=True)):
                try:
                    texts.append(zlib.decompress(opened(value)).decode(errors="replace"))
                except (zlib.error, TypeError, ValueError):
                    pass
    return texts


def holds_the_number(text: str, number: str = CALLER) -> bool:
    """The number in any usual form: +81..., 81..., 090..., or its last 8 digits."""
    return any(form in text for form in (number, number[1:], "0" + number[3:], number[-8:]))


@pytest.mark.parametrize("caller", ["+88213000000", "+81312345678"])
def test_sms_is_offered_only_to_a_japanese_mobile(make_app: AppFactory, redis_url: str,
                                                  prism: tuple[TwilioApi, Sending], caller: str) -> None:
    """A forged foreign number or a landline would get (or make us pay for) an SMS: never offered, never sent (and
    the job, which asks Twilio for the number, sends none to the foreign number Twilio answers with)."""
    result = sms_call(make_app(OPEN, **SMS), caller)
    assert KEYS_NO_SMS in result.heard()
    assert KEYS_SMS not in result.heard()
    assert SENT not in result.heard()
    assert result.heard()[-1] == "お電話ありがとうございました。"
    client = redis.Redis.from_url(redis_url)
    queue = Queue("ivr", connection=client)
    assert [j.func_name for j in queue.jobs if j.func_name.endswith("send_referral_sms")] == []
    api, _ = prism
    job = queue.enqueue(jobs.send_referral_sms, {"call_sid": result.call_sid, "body": "test"})
    before = outcomes()
    run_jobs(client)
    assert Job.fetch(job.id, connection=client).return_value() is False
    assert api.requests() == [calls_path(result.call_sid)]  # the number looked up, no message sent
    assert api.violations() == []
    assert {"sent": 0, "not_mobile": 1, "already_today": 0, "hourly_cap": 0, "failed": 0} == counted(before)


def test_two_calls_from_one_mobile_send_one_message(make_app: AppFactory, redis_url: str,
                                                     prism: tuple[TwilioApi, Sending],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Repeated calls from one number (or forged as it) would send it a message each: one a number a day."""
    api, sending = prism
    example_caller_is_mobile(monkeypatch)  # Twilio's example answers every lookup with one number
    app = make_app(OPEN, **SMS)
    results = [sms_call(app), sms_call(app)]
    assert [SENT in r.heard() for r in results] == [True, True]
    client = redis.Redis.from_url(redis_url)
    sms_jobs = [j for j in Queue("ivr", connection=client).jobs if j.func_name.endswith("send_referral_sms")]
    assert [(sorted(j.args[0]), j.args[0]["call_sid"]) for j in sms_jobs] == [
        (["body", "call_sid"], r.call_sid) for r in results]
    before = outcomes()
    run_jobs(client)
    assert api.requests() == [calls_path(results[0].call_sid), MESSAGES, calls_path(results[1].call_sid)]
    assert api.violations() == []
    assert [(data["To"], data["From"]) for method, _, data in sending.sent if method == "POST"] == [
        (EXAMPLE_CALLER, SMS["IVR_SMS_FROM"])]
    assert {"sent": 1, "not_mobile": 0, "already_today": 1, "hourly_cap": 0, "failed": 0} == counted(before)
    (day_key,) = client.keys("ivr:sms-day:*")
    assert 0 < client.ttl(day_key) <= 86400
    assert not any(holds_the_number(text) or holds_the_number(text, EXAMPLE_CALLER) for text in everything_in(client))


def test_hourly_cap_stops_sends_and_counts_them(make_app: AppFactory, redis_url: str, twilio: Twilio,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of calls from many numbers would send SMS without bound: the cap stops them, counted, until the next hour."""
    monkeypatch.setenv("IVR_SMS_HOURLY_CAP", "2")
    app = make_app(OPEN, **SMS)
    callers = ["+819011110001", "+818022220002", "+817033330003"]
    for caller in callers:
        twilio.callers[sms_call(app, caller).call_sid] = caller
    client = redis.Redis.from_url(redis_url)
    before = outcomes()
    run_jobs(client)
    assert [to for to, _ in twilio.sent] == callers[:2]
    assert {"sent": 2, "not_mobile": 0, "already_today": 0, "hourly_cap": 1, "failed": 0} == counted(before)
    assert b"3" == client.get("ivr:sms-hour:2025-05-03T03")
    assert 0 < client.ttl("ivr:sms-hour:2025-05-03T03") <= 7200
    assert 2 == len(client.keys("ivr:sms-day:*"))

    monkeypatch.setenv("IVR_CLOCK", "2025-05-03T04:00:00+09:00")
    twilio.callers["CA" + "1" * 32] = callers[2]
    Queue("ivr", connection=client).enqueue(jobs.send_referral_sms, {"call_sid": "CA" + "1" * 32, "body": "x"})
    run_jobs(client)
    assert [to for to, _ in twilio.sent] == callers


def test_a_twilio_refusal_keeps_its_code_and_not_the_number(make_app: AppFactory, redis_url: str, twilio: Twilio,
                                                           worker_logging: Callable[[], None],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Twilio's error text names the number: the failed job kept for a week and the worker's log would hold it."""
    twilio.refuse = True
    result = sms_call(make_app(OPEN, **SMS))
    twilio.callers[result.call_sid] = CALLER
    client = redis.Redis.from_url(redis_url)
    worker_logging()
    before = outcomes()
    run_jobs(client)
    log = capsys.readouterr()
    assert {"sent": 0, "not_mobile": 0, "already_today": 0, "hourly_cap": 0, "failed": 1} == counted(before)
    (failed,) = FailedJobRegistry("ivr", connection=client).get_job_ids()
    latest = Job.fetch(failed, connection=client).latest_result()
    exc_info = latest.exc_string if latest is not None and latest.exc_string else ""
    assert exc_info.rstrip().splitlines()[-1] == f"ivr.state.jobs.SmsRefused: {REFUSED}"
    assert not holds_the_number(exc_info)
    stored = everything_in(client)
    assert any(REFUSED in text for text in stored)  # the scan reads RQ's compressed exc_info
    assert [text for text in stored if holds_the_number(text)] == []
    lines = [json.loads(line) for line in log.err.splitlines()]
    failures = [x for x in lines if x.get("logger") == "rq.worker" and "exception raised while executing" in x["event"]]
    assert [(x["level"], x["event"].rstrip().splitlines()[-1]) for x in failures] == [
        ("error", f"ivr.state.jobs.SmsRefused: {REFUSED}")]
    assert not holds_the_number(log.err + log.out)


def test_rq_log_lines_are_scrubbed(worker_logging: Callable[[], None], capsys: pytest.CaptureFixture[str]) -> None:
    """An RQ log line quoting an exception that names a number would put the number in the worker's log."""
    worker_logging()
    rq_log = logging.getLogger("rq.worker")
    rq_log.error("job j: exception raised while executing (f)\n%s", f"TwilioRestException: The 'To' number {CALLER} "
                 "is not a valid phone number.")
    try:
        raise ValueError(f"The 'To' number {CALLER} is not a valid phone number.")
    except ValueError:
        rq_log.exception("job j failed")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (first["logger"], first["level"], first["event"]) == ("rq.worker", "error", (
        "job j: exception raised while executing (f)\nTwilioRestException: The 'To' number [number removed] is not "
        "a valid phone number."))
    assert second["exception"].splitlines()[-1] == "ValueError: The 'To' number [number removed] is not a valid phone number."


def test_sms_text_names_no_dv_or_suicide_line(make_app: AppFactory) -> None:
    """Whoever picks up the caller's phone would read that they sought help for DV or suicide."""
    flow = make_app(OPEN).extensions["ivr.flows"].current()
    referrals = flow.routing.spec.referrals
    unnamed = [r for r in referrals if not r.sms_named]
    assert sorted(r.id for r in unnamed) == ["childline", "dv-plus", "inochi", "inochi-mail", "inochi-sos",
                                             "kodomo-sos"]
    for lang in flow.menu.spec.languages:
        body = flow.endings.sms_body(lang, flow.menu.general, referrals)
        names = {"DV相談プラス", "いのちの電話", "#いのちSOS", "いのちSOS", *(n for r in unnamed for n in (
            r.name, r.name_en, *r.names.values()))}
        assert (lang, [n for n in names if n in body]) == (lang, [])
    assert flow.endings.sms_body("ja", flow.menu.general, referrals).splitlines() == [
        "孤独・孤立相談ダイヤルからのご案内です。", "よりそいホットライン: 0120-279-338",
        "よりそいホットライン（外国語、2番）: 0120-279-338", "0120-0-78310", "0120-99-7777", "0120-279-889",
        "0120-783-556", "0120-061-338", "あなたのいばしょ: https://talkme.jp/",
        "命の危険があるときは、110番か119番に電話してください。"]  # inochinodenwa.org would name its line: left out


def test_no_sms_is_promised_once_the_hours_cap_is_reached(make_app: AppFactory, redis_url: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller offered key 2 after the hour's cap would hear "SMSでお送りします" and get nothing: past the cap, the
    busy ending offers only to hear the lines again."""
    monkeypatch.setenv("IVR_SMS_HOURLY_CAP", "2")
    client = redis.Redis.from_url(redis_url)
    for sent, offered in ((1, True), (2, False)):
        client.set("ivr:sms-hour:2025-05-03T03", sent)
        heard = call(make_app(OPEN, **SMS), ["5", "-"], queue_result="queue-full").heard()
        assert (sent, "もう一度聞くときは1を、SMSで受け取るときは2を押してください。" in heard,
                "もう一度聞くときは、1を押してください。" in heard) == (sent, offered, not offered)
