"""An honest busy line: a caller whose wait (place in line at the rate callers were taken lately) is longer than the
partner's maximum wait is told so at the first wait round and offered the other lines at once, or to keep waiting."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import redis

from ivr.call.patience import estimate
from tests.support import BASE, AppFactory, signed
from tests.test_queue import wait_doc

OPEN = "2025-05-03T03:00:00+09:00"
TOLD = ("おつなぎするまで、25分以上かかりそうです。いますぐ、ほかの相談窓口をお聞きになるときは、1を押してください。"
        "このままお待ちいただくこともできます。")


def taken(redis_url: str, partner: str, count: int) -> None:
    """`count` callers taken by the partner's counsellors in the last few minutes."""
    client = redis.Redis.from_url(redis_url)
    now = time.time()
    client.zadd(f"ivr:taken:{partner}", {f"t{n}": now - 60 * n for n in range(count)})


def said(root: ET.Element) -> list[str]:
    return ["".join(v.itertext()) for v in root.iter("Say")]


def answer(app, digits: str, option: str = "women", partner: str = "sakura"):  # type: ignore[no-untyped-def]
    path = f"/voice/wait?o={option}&l=ja&s=0&p={partner}&h=1"
    params = {"CallSid": "CA" + "c" * 32, "Digits": digits, "QueueSid": "QU" + "0" * 32}
    resp = app.test_client().post(path, data=params, base_url=BASE,
                                  headers={"X-Twilio-Signature": signed(BASE + path, params)})
    assert resp.status_code == 200
    return ET.fromstring(resp.get_data())


def test_the_estimate_is_place_in_line_at_the_recent_rate() -> None:
    """Fifth in line with three callers taken in fifteen minutes: about 25 minutes; too few taken says nothing."""
    assert [estimate(5, 3), estimate(1, 10), estimate(5, 1), estimate(5, None), estimate(0, 9)] == [
        1500, 90, None, None, None]


def test_a_long_wait_is_told_at_the_first_round_with_the_other_lines_on_1(make_app: AppFactory,
                                                                          redis_url: str) -> None:
    """Fifth in line at a partner that took three callers lately: told it will be over 25 minutes (past its
    5-minute maximum), 1 for other lines now, or keep waiting; the hold sound follows."""
    taken(redis_url, "sakura", 3)
    root = wait_doc(make_app(OPEN), queue_time=0, position=5)
    gather = root.find("Gather")
    assert gather is not None and gather.get("numDigits") == "1"
    assert "h=1" in (gather.get("action") or "") and "p=sakura" in (gather.get("action") or "")
    assert said(gather) == [TOLD]
    assert [v.tag for v in root][1:] == ["Play", "Say"]


def test_later_rounds_and_short_waits_are_not_told(make_app: AppFactory, redis_url: str) -> None:
    """Only the first round tells; a wait within the maximum, or one nobody can estimate, is the usual round."""
    app = make_app(OPEN)
    assert wait_doc(app, queue_time=0, position=5).find("Gather") is None  # nobody taken lately: no estimate
    taken(redis_url, "sakura", 3)
    assert wait_doc(app, queue_time=40, position=5).find("Gather") is None
    assert wait_doc(app, queue_time=0, position=1).find("Gather") is None  # 5 minutes: within the maximum
    assert wait_doc(app, queue_time=0, position=5, extra="&u=1").find("Gather") is None  # in crisis: waits


def test_pressing_1_speaks_the_lines_open_now_and_keeps_the_place(make_app: AppFactory) -> None:
    """1: the phone lines for the caller's option and when to call again, said while still in line (a counsellor
    free meanwhile still takes them); nothing a wait URL may not hold."""
    root = answer(make_app(OPEN), "1")
    lines = said(root)
    assert lines[0].startswith("DV相談プラス")
    assert lines[-1] == "相談員が空きしだい、おつなぎします。このままお待ちください。"
    assert {v.tag for v in root} <= {"Say", "Play", "Pause"}


def test_any_other_answer_keeps_waiting(make_app: AppFactory) -> None:
    """Silence or another key: the caller goes on waiting with the hold sound."""
    root = answer(make_app(OPEN), "")
    assert said(root) == ["相談員が空きしだい、おつなぎします。このままお待ちください。"]
    assert [v.tag for v in root] == ["Say", "Play"]


def test_a_simulated_call_hears_the_estimate_and_keeps_waiting(make_app: AppFactory, redis_url: str) -> None:
    """Through the stand-in: the caller hears the honest estimate, presses nothing, and is answered in the end."""
    from tests.support import call

    taken(redis_url, "sakura", 3)
    result = call(make_app(OPEN), ["5"], wait_rounds=[2], queue_position=5)
    assert TOLD in result.heard()
    assert result.connected is not None and result.connected.target == "queue women-sakura"


def test_the_offer_is_made_once_per_wait(make_app: AppFactory, redis_url: str) -> None:
    """A caller who answers the offer at once with another key is not offered it again at the next round, even
    when that round still comes early; a wait at another partner (moved on) is a new wait, told once again."""
    app = make_app(OPEN)
    taken(redis_url, "sakura", 3)
    assert wait_doc(app, queue_time=0, position=5).find("Gather") is not None
    assert said(answer(app, "5")) == ["相談員が空きしだい、おつなぎします。このままお待ちください。"]
    again = wait_doc(app, queue_time=12, position=5)
    assert again.find("Gather") is None and [v.tag for v in again][:1] == ["Say"]
    taken(redis_url, "tsunagari", 3)
    assert wait_doc(app, queue_time=0, position=5, partner="tsunagari", option="general").find("Gather") is not None
