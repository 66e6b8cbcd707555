"""The end of the chain: the lines open now, again on a key, and by SMS to the caller's phone, which is not kept."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import redis
from rq import Queue, SimpleWorker
from twilio.http import HttpClient
from twilio.http.response import Response

from ivr.state import jobs
from tests.support import CALLER, AppFactory, call
from tests.twilio_api import EXAMPLE_CALLER, Sending, TwilioApi

OPEN = "2025-05-03T03:00:00+09:00"
SMS = {"TWILIO_ACCOUNT_SID": "AC" + "f" * 32, "IVR_SMS_FROM": "+15005550006"}


class RecordingTwilio(HttpClient):
    """Twilio's REST API as recorded: a call's details, and a message created."""

    def __init__(self, caller: str):
        import logging

        super().__init__(logging.getLogger("recorded-twilio"), False)
        self.caller = caller
        self.requests: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, params: Any = None, data: Any = None, headers: Any = None,
                auth: Any = None, timeout: Any = None, allow_redirects: bool = False) -> Response:
        self.requests.append((method, url, dict(data or {})))
        if method == "GET" and "/Calls/" in url:
            return Response(200, json.dumps({"sid": url.rsplit("/", 1)[-1].removesuffix(".json"),
                                             "from": self.caller, "to": "+81120494949", "status": "in-progress"}))
        if method == "POST" and url.endswith("/Messages.json"):
            return Response(201, json.dumps({"sid": "SM" + "0" * 32, "status": "queued", "body": data["Body"]}))
        return Response(404, "{}")


def test_chain_end_offers_the_lines_again(make_app: AppFactory) -> None:
    """At the end of the chain, key 1 repeats the lines open now, the chat line too; silence says goodbye (no SMS)."""
    result = call(make_app(OPEN), ["5", "1", "-"], queue_result="queue-full")
    heard = result.heard()
    assert heard.count("DV相談プラス、電話番号 0120-279-889 で相談できます。") == 2
    assert heard.count("あなたのいばしょでは、チャットで相談できます。インターネットで「あなたのいばしょ」と検索してください。") == 2
    assert heard.count("もう一度聞くときは、1を押してください。") == 2
    assert heard[-2:] == ["命の危険があるときは、110番か119番に電話してください。", "お電話ありがとうございました。"]
    assert not result.stranded


def test_sms_sends_one_message_and_keeps_no_number(make_app: AppFactory, redis_url: str, twilio_api: TwilioApi,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Key 2 sends the lines once by SMS, the DV line by its number alone; the caller's number is in no job, key or value.
    Twilio is the mock of its API description, whose example call is from EXAMPLE_CALLER: the Japanese-mobile rule is
    widened to that one number, nothing else."""
    for k, v in {**SMS, "TWILIO_AUTH_TOKEN": "test-auth-token-0123456789abcdef", "TWILIO_API_URL": twilio_api.url}.items():
        monkeypatch.setenv(k, v)
    twilio = Sending()
    monkeypatch.setattr(jobs, "HTTP_CLIENT", twilio)
    monkeypatch.setattr(jobs, "JAPANESE_MOBILE", re.compile(rf"{jobs.JAPANESE_MOBILE.pattern}|{re.escape(EXAMPLE_CALLER)}"))
    twilio_api.mark()
    app = make_app(OPEN, **SMS)
    result = call(app, ["5", "2"], queue_result="queue-full")
    assert "もう一度聞くときは1を、SMSで受け取るときは2を押してください。" in result.heard()
    assert "SMSでお送りします。" in result.heard()
    client = redis.Redis.from_url(redis_url)
    for k in client.scan_iter():
        dump = repr(client.dump(k))
        assert CALLER[1:] not in dump and CALLER[-8:] not in dump
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
    sent = [r for r in twilio.sent if r[0] == "POST"]
    assert len(sent) == 1
    assert sent[0][2]["To"] == EXAMPLE_CALLER and sent[0][2]["From"] == "+15005550006"
    assert [method for method, _ in twilio_api.requests()] == ["GET", "POST"] and twilio_api.violations() == []
    assert sent[0][2]["Body"].splitlines() == [
        "孤独・孤立相談ダイヤルからのご案内です。", "0120-279-889", "よりそいホットライン: 0120-279-338",
        "あなたのいばしょ: https://talkme.jp/", "命の危険があるときは、110番か119番に電話してください。"]
    for k in client.scan_iter():
        assert CALLER[1:] not in repr(client.dump(k)) and EXAMPLE_CALLER[1:] not in repr(client.dump(k))


@pytest.mark.parametrize("caller", ["anonymous", "+266696687", ""])
def test_sms_is_not_offered_to_a_withheld_number(make_app: AppFactory, caller: str) -> None:
    """A withheld caller is offered the lines again but never an SMS."""
    result = call(make_app(OPEN, **SMS), ["5", "2"], queue_result="queue-full", caller=caller)
    assert "もう一度聞くときは、1を押してください。" in result.heard()
    assert "SMSでお送りします。" not in result.heard()
    assert result.heard()[-1] == "お電話ありがとうございました。"


def test_sms_in_the_callers_language(make_app: AppFactory) -> None:
    """A Spanish-speaking caller is offered the SMS in Spanish."""
    result = call(make_app(OPEN, **SMS), ["3", "6", "-"], queue_result="queue-full")
    assert "Para escuchar de nuevo, marque 1; para recibirlo por SMS, marque 2." in result.heard("es")
