"""The counsellors' line beyond the first bridge: a whisper about the caller actually bridged, a transfer to another
option's line on `*`, and a caller never stranded when the transfer does not happen."""

from __future__ import annotations

import re

from ivr.state import handover
from ivr.tools.standin import CallResult, InProcess, StandIn
from tests.support import BASE, CALLER, TOKEN, AppFactory, call, post_signed
from tests.test_counselor import COUNSELLOR, app_with_counsellors, counsellor_call

GENERAL_WAIT = "/voice/wait?p=tsunagari&o=general&l=ja&s=0"
CONNECTING = "相談窓口におつなぎします。そのまま、お待ちください。"
GOODBYE = "お電話ありがとうございました。"


def sid(n: int) -> str:
    return "CA" + f"{n:x}" * 32


def waiting(app, keys: list[str]) -> str:  # type: ignore[no-untyped-def]
    """A caller who chose with these keys and now waits in the general line's queue; their CallSid."""
    placed = call(app, keys, queue_result="hangup")
    app.extensions["ivr.store"].joined("general-tsunagari", placed.call_sid)
    return placed.call_sid


def xml(transport: InProcess, url: str, params: dict[str, str]) -> str:
    status, _, body = post_signed(transport, BASE + url, params)
    assert status == 200
    return body.decode()


def transfers(app) -> dict[tuple[str, str], float]:  # type: ignore[no-untyped-def]
    """ivr_transfers_total by (from, to), leaving out the zeros."""
    metric = app.extensions["ivr.metrics"].transfers
    return {(s.labels["from_option"], s.labels["to_option"]): s.value for m in metric.collect() for s in m.samples
            if s.name.endswith("_total") and s.value}


def after_bridge(app, caller: str, queue: str = "general-tsunagari") -> CallResult:  # type: ignore[no-untyped-def]
    """The caller's call from its queue action after the bridge ended, as Twilio goes on with it."""
    return StandIn(InProcess(app), TOKEN, BASE, caller=CALLER, wait_rounds=0).call(
        f"/voice/queue-done?q={queue}&p=tsunagari&o=general&l=ja&s=0",
        first={"QueueResult": "bridged", "QueueSid": "QU" + "0" * 32, "QueueTime": "300"}, call_sid=caller)


def bridged(app, n: int) -> tuple[InProcess, str, str]:  # type: ignore[no-untyped-def]
    """A caller waiting on the general line and counsellor `n` logged in and bridged to them: the transport, the
    caller's CallSid and the counsellor's Dial action URL."""
    transport = InProcess(app)
    caller = waiting(app, ["1"])
    login = xml(transport, "/counselor/pin?c=1001&n=1", {"CallSid": sid(n), "From": COUNSELLOR, "Digits": "482193"})
    xml(transport, "/counselor/connecting?l=ja", {"CallSid": caller, "DequeingCallSid": sid(n)})
    return transport, caller, login.split('<Dial action="')[1].split('"')[0].replace("&amp;", "&")


def test_two_counsellors_at_once_each_hear_their_own_callers_details(make_app: AppFactory) -> None:
    """Two counsellors logging in at the same moment against two waiting callers: each whisper names the caller
    that counsellor is then bridged to, and each caller goes over to that counsellor's desk only."""
    app = app_with_counsellors(make_app)
    transport, store = InProcess(app), app.extensions["ivr.store"]
    first = waiting(app, ["1"])  # the general line, in Japanese: waited longest
    second = waiting(app, ["3", "5"])  # the foreign-language line, in Portuguese
    one = xml(transport, "/counselor/pin?c=1001&n=1", {"CallSid": sid(1), "From": COUNSELLOR, "Digits": "482193"})
    two = xml(transport, "/counselor/pin?c=1002&n=1", {"CallSid": sid(2), "From": "+819012340000",
                                                         "Digits": "730416"})
    assert "孤独や孤立に悩んでいる方、日本語、" in one and "外国語で相談したい方、ポルトガル語、" in two
    desks = [re.search(r'<Queue [^>]*>(desk-[0-9a-f]{16})</Queue>', doc)[1] for doc in (one, two)]  # type: ignore[index]
    assert desks[0] != desks[1] and all('hangupOnStar="true"' in doc for doc in (one, two))
    for caller, desk in zip((first, second), desks, strict=True):
        assert "<Leave />" in xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueTime": "40"})
        over = xml(transport, "/voice/queue-done?q=general-tsunagari&p=tsunagari&o=general&l=ja&s=0",
                   {"CallSid": caller, "QueueResult": "leave", "QueueTime": "40"})
        assert re.search(r"<Enqueue [^>]*>(.*)</Enqueue>", over)[1] == desk  # type: ignore[index]
        assert "qt=40" in over  # the wait so far, so the whole wait is counted when the desk's outcome comes
    # Twilio's <Queue url> request names the dequeued caller (CallSid) and the counsellor (DequeingCallSid)
    said = xml(transport, "/counselor/connecting?l=ja", {"CallSid": second, "DequeingCallSid": sid(2)})
    assert "Você está sendo conectado agora." in said
    assert handover.bridged_to(store, sid(2)) == second
    assert "<Leave" not in xml(transport, GENERAL_WAIT, {"CallSid": first, "QueueTime": "60"})  # arrived: no more


def test_star_and_the_womens_key_put_the_caller_through_to_the_womens_urgent_queue(make_app: AppFactory) -> None:
    """A counsellor on the general line presses * and the women's key: the caller is told they are being connected
    and is next in the women's partner's urgent queue, taken first; the transfer is counted."""
    app = app_with_counsellors(make_app)
    caller = waiting(app, ["1"])
    counsellor = counsellor_call(app, ["1001", "482193", "*", "5", "-"], dequeued=caller)  # `*` ended the bridge
    heard = counsellor.heard()
    assert heard[2].startswith("孤独や孤立に悩んでいる方、日本語、")
    assert heard[3:5] == ["相談者をほかの窓口におつなぎするときは、アスタリスクを押してください。緊急の対応が必要なときは、"
                          "ご本人の同意があれば7を、同意がなければ8を押してください。",
                          "続けて次の方とお話しするときは、1を押してください。終えるときは、電話をお切りください。"]
    assert heard[5:7] == ["おつなぎする窓口の番号を押してください。", "孤独や孤立に悩んでいる方は、1を押してください。"]
    assert "女性の方は、5を押してください。" in heard and "その番号は選べません。" not in heard
    assert heard[-3:] == ["相談者を、女性の方の窓口におつなぎします。", heard[4], "お疲れさまでした。終了します。"]
    went_on = after_bridge(app, caller)
    assert went_on.heard() == [CONNECTING, GOODBYE]  # put through, a conversation there, then goodbye
    assert [e.target for e in went_on.of("enqueue")] == ["women-sakura-urgent"]
    assert not went_on.stranded and transfers(app) == {("general", "women"): 1.0}


def test_a_counsellor_who_hangs_up_mid_transfer_leaves_the_caller_with_a_person(make_app: AppFactory) -> None:
    """The counsellor presses * and then hangs up without choosing: the caller holds, then goes to the general
    line's urgent queue, never to silence."""
    app = app_with_counsellors(make_app)
    transport, caller, action = bridged(app, 3)
    menu = xml(transport, action, {"CallSid": sid(3), "DialCallStatus": "completed", "DialCallDuration": "200"})
    assert "アスタリスク" in menu  # then the counsellor hangs up: Twilio asks nothing more of their call
    went_on = after_bridge(app, caller)
    assert went_on.heard() == [CONNECTING, CONNECTING, GOODBYE]  # "please hold", put through, then goodbye
    assert len(went_on.of("hold")) == 8
    assert [e.target for e in went_on.of("enqueue")] == ["general-tsunagari-urgent"]
    assert not went_on.stranded and transfers(app) == {("general", "general"): 1.0}
    metrics = app.test_client().get("/metrics").get_data(as_text=True)  # every pair shown from the start
    assert 'ivr_transfers_total{from_option="women",to_option="under18"} 0.0' in metrics


def test_a_counsellors_ordinary_hang_up_ends_the_callers_call_as_before(make_app: AppFactory) -> None:
    """No `*`: when the counsellor hangs up, the caller hears goodbye at once, with no hold and no transfer."""
    app = app_with_counsellors(make_app)
    transport, caller, action = bridged(app, 4)
    xml(transport, action, {"CallSid": sid(4), "DialCallStatus": "completed", "DialCallDuration": "200",
                            "CallStatus": "completed"})
    went_on = after_bridge(app, caller)
    assert went_on.heard() == [GOODBYE] and went_on.of("enqueue") == [] and went_on.of("hold") == []
    assert transfers(app) == {}


def test_a_caller_the_counsellor_missed_goes_back_to_the_front_of_the_line(make_app: AppFactory) -> None:
    """A caller who went over to a desk where no counsellor took them is put back on the partner's urgent lane."""
    app = app_with_counsellors(make_app)
    transport = InProcess(app)
    back = xml(transport, "/voice/queue-done?q=desk-0123456789abcdef&p=tsunagari&o=general&l=ja&s=0",
               {"CallSid": sid(5), "QueueResult": "leave", "QueueTime": "90"})
    assert re.search(r"<Enqueue [^>]*>(.*)</Enqueue>", back)[1] == "general-tsunagari-urgent"  # type: ignore[index]
