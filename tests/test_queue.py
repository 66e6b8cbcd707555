"""Waiting in a queue: position, an honest average, reassurance, and rolling over at the partner's maximum wait."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.support import BASE, TOKEN, AppFactory, call

OPEN = "2025-05-03T03:00:00+09:00"


def wait_doc(app, queue_time: int, position: int = 3, average: int = 240, partner: str = "sakura",
             option: str = "women", extra: str = ""):  # type: ignore[no-untyped-def]
    from twilio.request_validator import RequestValidator

    path = f"/voice/wait?o={option}&l=ja&s=0&p={partner}{extra}"
    params = {"CallSid": "CA" + "c" * 32, "QueueTime": str(queue_time), "QueuePosition": str(position),
              "AvgQueueTime": str(average), "QueueSid": "QU" + "0" * 32}
    sig = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    resp = app.test_client().post(path, data=params, base_url=BASE, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 200
    return ET.fromstring(resp.get_data())


def test_wait_says_position_average_and_reassurance(make_app: AppFactory) -> None:
    """A caller third in line hears where they are and the recent average, then the hold sound, never silence
    longer than its few seconds' remainder."""
    root = wait_doc(make_app(OPEN), queue_time=0)
    said = ["".join(v.itertext()) for v in root if v.tag == "Say"]
    assert said == ["ただいま、相談員がほかのお電話に対応しています。順番におつなぎしますので、切らずにお待ちください。",
                    "ただいま、3番目にお待ちいただいています。", "最近の平均の待ち時間は、およそ4分です。",
                    "相談員が空きしだい、おつなぎします。このままお待ちください。"]
    assert [(v.tag, v.get("loop") or v.get("length")) for v in root if v.tag != "Say"] == [
        ("Play", "1"), ("Pause", "2"), ("Play", "1"), ("Pause", "2")]
    assert all((v.text or "").startswith(f"{BASE}/audio/hold.wav?v=") for v in root if v.tag == "Play")


def test_short_average_is_not_spoken(make_app: AppFactory) -> None:
    """An average under a minute tells the caller nothing honest, so it is left out; later rounds skip the intro."""
    root = wait_doc(make_app(OPEN), queue_time=40, average=20)
    said = ["".join(v.itertext()) for v in root if v.tag == "Say"]
    assert said == ["ただいま、3番目にお待ちいただいています。", "相談員が空きしだい、おつなぎします。このままお待ちください。"]


def test_last_round_ends_at_the_maximum_wait(make_app: AppFactory) -> None:
    """Ten seconds before the maximum, the hold sound and the pauses add up to exactly the time left."""
    from ivr.state.recordings import HOLD_SECONDS

    root = wait_doc(make_app(OPEN), queue_time=290)
    assert sum(int(v.get("length", "0")) if v.tag == "Pause" else HOLD_SECONDS * int(v.get("loop", "1"))
               for v in root if v.tag in ("Pause", "Play")) == 10


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


def capped_routing(tmp_path, capacity: int = 1):  # type: ignore[no-untyped-def]
    from pathlib import Path

    text = (Path(__file__).parents[1] / "routing" / "routing.yaml").read_text(encoding="utf-8")
    assert "    queue: women-sakura\n" in text
    path = tmp_path / "routing.yaml"
    path.write_text(text.replace("    queue: women-sakura\n", f"    queue: women-sakura\n    capacity: {capacity}\n"),
                    encoding="utf-8")
    return str(path)


def press(app, sid: str, digits: str) -> str:  # type: ignore[no-untyped-def]
    """The queue (or number) the menu step sends this call to."""
    from twilio.request_validator import RequestValidator

    params = {"CallSid": sid, "Digits": digits, "To": "+81120494949"}
    path = "/voice/menu?n=1"
    sig = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    root = ET.fromstring(app.test_client().post(path, data=params, base_url=BASE,
                                                headers={"X-Twilio-Signature": sig}).get_data())
    target = root.find("Enqueue")
    assert target is not None
    return (target.text or "").strip()


def post(app, path: str, params: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    from twilio.request_validator import RequestValidator

    sig = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    return app.test_client().post(path, data=params, base_url=BASE, headers={"X-Twilio-Signature": sig}).status_code


def test_cap_is_shared_by_two_instances(make_app: AppFactory, tmp_path, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    """With a cap of 1, a second caller on another web instance skips the busy partner; the place comes back."""
    import redis

    routing = capped_routing(tmp_path)
    a, b = make_app(OPEN, IVR_ROUTING_FILE=routing), make_app(OPEN, IVR_ROUTING_FILE=routing)
    first, second, third = "CA" + "1" * 32, "CA" + "2" * 32, "CA" + "3" * 32
    assert press(a, first, "5") == "women-sakura"
    assert press(b, second, "5") == "general-tsunagari"
    client = redis.Redis.from_url(redis_url)
    members = client.zrange("ivr:lease:sakura", 0, -1)
    assert len(members) == 1 and first.encode() not in members[0]
    assert 0 < client.ttl("ivr:lease:sakura") <= 90 * 60
    assert post(a, "/voice/queue-done?o=women&l=ja&s=0", {"CallSid": first, "QueueResult": "bridged"}) == 200
    assert client.zcard("ivr:lease:sakura") == 0
    assert press(b, third, "5") == "women-sakura"
    assert post(b, "/voice/status", {"CallSid": third, "CallStatus": "completed"}) == 204
    assert client.zcard("ivr:lease:sakura") == 0


def test_cap_is_not_enforced_without_redis(make_app: AppFactory, tmp_path, own_redis) -> None:  # type: ignore[no-untyped-def]
    """With Redis down nobody can count places, so callers go through rather than being turned away."""
    app = make_app(OPEN, IVR_ROUTING_FILE=capped_routing(tmp_path), REDIS_URL=own_redis.url)
    own_redis.stop()
    assert press(app, "CA" + "4" * 32, "5") == "women-sakura"
    assert press(app, "CA" + "5" * 32, "5") == "women-sakura"


def test_outcomes_are_folded_once_without_caller_data(make_app: AppFactory, redis_url: str) -> None:
    """Queue results are counted per campaign day and partner with a wait bucket; a repeated callback counts once."""
    import redis
    from rq import Queue, SimpleWorker

    app = make_app(OPEN)
    result = call(app, ["5"], wait_rounds=[2], queue_result="bridged")
    assert post(app, "/voice/queue-done?q=women-sakura&o=women&l=ja&s=0",
                {"CallSid": result.call_sid, "QueueResult": "bridged", "QueueTime": "52"}) == 200
    client = redis.Redis.from_url(redis_url)
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
    counts = {k.decode(): int(v) for k, v in client.hgetall("ivr:agg:gw-2025:2025-05-03:sakura").items()}
    assert counts["queue:bridged"] == 1  # the stand-in's own callback; the repeat was not counted again
    assert sum(v for k, v in counts.items() if k.startswith("wait:")) == 1


def test_new_year_end_of_chain_for_a_child(make_app: AppFactory) -> None:
    """On 30 Dec an under-18 caller at the end of the chain hears the 24-hour children's line, not Childline;
    on 28 Dec, when Childline is open, both."""
    late = call(make_app("2026-12-30T17:00:00+09:00"), ["2", "-"], queue_result="queue-full").text
    assert "24時間子供SOSダイヤル、でんわばんごう 0120-0-78310 で そうだん できるよ。" in late
    assert "チャイルドライン" not in late
    early = call(make_app("2026-12-28T17:00:00+09:00"), ["2", "-"], queue_result="queue-full").text
    assert "チャイルドライン、でんわばんごう 0120-99-7777 で そうだん できるよ。" in early


def test_queue_and_dial_outcomes_are_metrics_by_partner(make_app: AppFactory) -> None:
    """Operators see how callers left each partner's queue, how long they waited, and how dials ended."""
    app = make_app(OPEN)
    call(app, ["5"], queue_result="queue-full")
    call(app, ["6"], dial_status="no-answer")
    text = app.test_client().get("/metrics").get_data(as_text=True)
    for sample in ('ivr_queue_results_total{partner="sakura",result="queue-full"} 1.0',
                   'ivr_queue_results_total{partner="niji",result="bridged"} 0.0',
                   'ivr_queue_wait_seconds_count{partner="sakura"} 1.0',
                   'ivr_dial_results_total{partner="hinata",status="no-answer"} 1.0',
                   'ivr_sms_referrals_total{result="queued"} 0.0'):
        assert sample in text, sample
