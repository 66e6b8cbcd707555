"""Waiting in a queue: position, an honest average, reassurance, and rolling over at the partner's maximum wait."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.support import BASE, TOKEN, AppFactory, call

OPEN = "2025-05-03T03:00:00+09:00"


def wait_doc(app, queue_time: int, position: int = 3, average: int = 240, partner: str = "sakura",
             option: str = "women"):  # type: ignore[no-untyped-def]
    from twilio.request_validator import RequestValidator

    path = f"/voice/wait?o={option}&l=ja&s=0&p={partner}"
    params = {"CallSid": "CA" + "c" * 32, "QueueTime": str(queue_time), "QueuePosition": str(position),
              "AvgQueueTime": str(average), "QueueSid": "QU" + "0" * 32}
    sig = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    resp = app.test_client().post(path, data=params, base_url=BASE, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 200
    return ET.fromstring(resp.get_data())


def test_wait_says_position_average_and_reassurance(make_app: AppFactory) -> None:
    """A caller third in line hears where they are and the recent average, then short quiet, never a long silence."""
    root = wait_doc(make_app(OPEN), queue_time=0)
    said = ["".join(v.itertext()) for v in root if v.tag == "Say"]
    assert said == ["ただいま、相談員がほかのお電話に対応しています。順番におつなぎしますので、切らずにお待ちください。",
                    "ただいま、3番目にお待ちいただいています。", "最近の平均の待ち時間は、およそ4分です。",
                    "相談員が空きしだい、おつなぎします。このままお待ちください。"]
    assert [(v.tag, v.get("length")) for v in root if v.tag == "Pause"] == [("Pause", "10"), ("Pause", "10")]


def test_short_average_is_not_spoken(make_app: AppFactory) -> None:
    """An average under a minute tells the caller nothing honest, so it is left out; later rounds skip the intro."""
    root = wait_doc(make_app(OPEN), queue_time=40, average=20)
    said = ["".join(v.itertext()) for v in root if v.tag == "Say"]
    assert said == ["ただいま、3番目にお待ちいただいています。", "相談員が空きしだい、おつなぎします。このままお待ちください。"]


def test_last_round_ends_at_the_maximum_wait(make_app: AppFactory) -> None:
    """Ten seconds before the maximum, the pauses add up to exactly the time left."""
    root = wait_doc(make_app(OPEN), queue_time=290)
    assert sum(int(v.get("length", "0")) for v in root if v.tag == "Pause") == 10


def test_past_the_maximum_wait_the_caller_leaves_the_queue(make_app: AppFactory) -> None:
    """At the partner's maximum wait the wait TwiML is <Leave/>, so the action moves the caller on."""
    root = wait_doc(make_app(OPEN), queue_time=300)
    assert [v.tag for v in root] == ["Leave"]


def test_rollover_after_the_maximum_wait(make_app: AppFactory) -> None:
    """A caller waiting past 300 s at the women's line is told and put through to the general line."""
    result = call(make_app(OPEN), ["5"], wait_rounds=[13, 1], queue_result="bridged")
    assert [e.target for e in result.of("leave")] == ["women-sakura"]
    assert "ただいま、つながりにくくなっています。別の相談窓口におつなぎします。" in result.heard()
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_under18_wait_stays_plain(make_app: AppFactory) -> None:
    """An under-18 caller hears their place in line in plain words."""
    root = wait_doc(make_app(OPEN), queue_time=40, partner="kodomo", option="under18")
    said = ["".join(v.itertext()) for v in root if v.tag == "Say"]
    assert said == ["いま、3ばんめに まっているよ。", "まつ じかんは、だいたい 4ふん くらいだよ。", "もうすこし まっててね。きらないでね。"]


def test_wait_in_the_callers_language(make_app: AppFactory) -> None:
    """A Korean-speaking caller hears the wait messages in Korean with a Korean voice."""
    result = call(make_app(OPEN), ["3", "3"], wait_rounds=2, avg_queue_time=180)
    assert "지금 1번째로 기다리고 계십니다." in result.heard("ko-KR")
    assert "최근 평균 대기 시간은 약 3분입니다." in result.heard("ko-KR")
