"""A caller a counsellor takes is moved to the counsellor's desk at once through Twilio's queue Member resource
(Prism serving Twilio's own API description), and still comes over at their next wait round when that cannot be
done: no account SID, Twilio out of reach."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from structlog.testing import capture_logs

from ivr.state import jobs
from ivr.tools.standin import InProcess
from tests.support import BASE, CALLER, AppFactory, free_port
from tests.test_counselor import COUNSELLOR, EXAMPLE, OPEN, app_with_counsellors
from tests.test_handover import GENERAL_WAIT, sid, waiting, xml
from tests.twilio_api import ACCOUNT, Sending, TwilioApi

QUEUE = "QU" + "ab" * 16  # the general line's queue, as Twilio names it in each waitUrl request
DESK_QUEUE = re.compile(r"<Enqueue [^>]*>(desk-[0-9a-f]{16})</Enqueue>")
PARTNER_ACTION = "/voice/queue-done?q=general-tsunagari&p=tsunagari&o=general&l=ja&s=0"


def with_twilio(make_app: AppFactory, **settings: str):  # type: ignore[no-untyped-def]
    """The counsellors' line with these Twilio REST settings."""
    return make_app(OPEN, IVR_PARTNERS_FILE=str(EXAMPLE), **settings)


def moves(app) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """ivr_desk_moves_total by result, leaving out the zeros."""
    metric = app.extensions["ivr.metrics"].desk_moves
    return {s.labels["result"]: s.value for m in metric.collect() for s in m.samples
            if s.name.endswith("_total") and s.value}


def take(app, counsellor: str = sid(7)) -> str:  # type: ignore[no-untyped-def]
    """Counsellor 1001 logs in and takes the caller waiting longest: what the counsellor's call is told."""
    return xml(InProcess(app), "/counselor/pin?c=1001&n=1", {"CallSid": counsellor, "From": COUNSELLOR,
                                                            "Digits": "482193"})


def test_a_taken_caller_is_moved_to_the_counsellors_desk_at_once(
        make_app: AppFactory, twilio_api: TwilioApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """The counsellor's login sends one valid request to Twilio that moves that caller, and only that caller, to
    the counsellor's desk now: the caller does not wait for their next wait round to be put through."""
    app = with_twilio(make_app, TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_API_URL=twilio_api.url)
    transport = InProcess(app)
    caller = waiting(app, ["1"])
    assert "<Leave" not in xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueSid": QUEUE, "QueueTime": "5"})
    sent = Sending()
    monkeypatch.setattr(jobs, "HTTP_CLIENT", sent)
    twilio_api.mark()
    login = take(app)
    assert "孤独や孤立に悩んでいる方、日本語、" in login
    desk = re.search(r"<Queue [^>]*>(desk-[0-9a-f]{16})</Queue>", login)[1]  # type: ignore[index]
    assert twilio_api.requests() == [("POST", f"/2010-04-01/Accounts/{ACCOUNT}/Queues/{QUEUE}/Members/{caller}.json")]
    assert twilio_api.violations() == []
    (_, _, form), = sent.sent
    assert form["Method"] == "POST" and form["Url"].startswith(BASE + "/voice/desk?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(form["Url"]).query).items()}
    assert query == {"d": desk, "q": "general-tsunagari", "qt": query["qt"], "p": "tsunagari", "o": "general",
                     "l": "ja", "s": "0"}
    # Twilio then runs the desk URL on the caller's call, and asks the partner queue's action too (either order)
    over = xml(transport, form["Url"].removeprefix(BASE), {"CallSid": caller})
    assert DESK_QUEUE.search(over)[1] == desk  # type: ignore[index]
    action = xml(transport, PARTNER_ACTION, {"CallSid": caller, "QueueResult": "redirected", "QueueSid": QUEUE,
                                             "QueueTime": "12"})
    assert DESK_QUEUE.search(action)[1] == desk  # type: ignore[index]  # the same place, whichever Twilio follows
    results = app.extensions["ivr.metrics"].queue_results
    assert results.labels("tsunagari", "redirected")._value.get() == 0  # on the way, not an outcome
    assert moves(app) == {"moved": 1.0}
    assert "<Leave" not in xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueTime": "25"})  # nothing left to do
    desk_wait = re.search(r'waitUrl="([^"]+)"', over)[1].replace("&amp;", "&")  # type: ignore[index]
    app.extensions["ivr.store"].client.set(f"ivr:claim:{caller}", desk)  # a claim left behind by a failed write
    assert "<Leave" not in xml(transport, desk_wait.removeprefix(BASE), {"CallSid": caller, "QueueTime": "5"})
    stored = app.extensions["ivr.store"].client
    assert not any(CALLER.encode() in (stored.dump(k) or b"") for k in stored.keys("*"))


def test_the_partner_queues_action_first_still_puts_the_caller_at_the_desk(make_app: AppFactory) -> None:
    """Twilio may ask the partner queue's action (redirected) before the desk URL: both send the caller to the
    counsellor's desk, and the caller is not sent on down the chain."""
    app = app_with_counsellors(make_app)
    transport = InProcess(app)
    caller = waiting(app, ["1"])
    desk = re.search(r"<Queue [^>]*>(desk-[0-9a-f]{16})</Queue>", take(app))[1]  # type: ignore[index]
    action = xml(transport, PARTNER_ACTION, {"CallSid": caller, "QueueResult": "redirected", "QueueTime": "12"})
    assert DESK_QUEUE.search(action)[1] == desk  # type: ignore[index]
    assert "qt=12" in action
    over = xml(transport, f"/voice/desk?d={desk}&q=general-tsunagari&qt=12&p=tsunagari&o=general&l=ja&s=0",
               {"CallSid": caller})
    assert DESK_QUEUE.search(over)[1] == desk  # type: ignore[index]


def test_without_an_account_sid_nothing_is_sent_and_the_next_wait_round_takes_the_caller_over(
        make_app: AppFactory, twilio_api: TwilioApi) -> None:
    """With no TWILIO_ACCOUNT_SID the service asks nothing of Twilio; the caller leaves for the desk at their next
    wait round, as before."""
    app = with_twilio(make_app, TWILIO_API_URL=twilio_api.url)
    transport = InProcess(app)
    caller = waiting(app, ["1"])
    xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueSid": QUEUE, "QueueTime": "5"})
    twilio_api.mark()
    take(app)
    assert twilio_api.requests() == [] and moves(app) == {"off": 1.0}
    assert "<Leave />" in xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueSid": QUEUE, "QueueTime": "25"})


def test_twilio_out_of_reach_leaves_the_counsellor_bridged_and_the_caller_taken_at_the_next_round(
        make_app: AppFactory) -> None:
    """Twilio cannot be reached: the counsellor still hears the whisper and dials the desk, only the error's kind
    is logged, and the caller leaves for the desk at their next wait round."""
    app = with_twilio(make_app, TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_API_URL=f"http://127.0.0.1:{free_port()}")
    transport = InProcess(app)
    caller = waiting(app, ["1"])
    xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueSid": QUEUE, "QueueTime": "5"})
    with capture_logs() as logs:
        login = take(app)
    assert "孤独や孤立に悩んでいる方、日本語、" in login and "<Queue " in login
    failed = [e for e in logs if e["event"] == "desk_move_failed"]
    assert failed == [{"event": "desk_move_failed", "error": "ConnectionError", "log_level": "warning"}]
    assert moves(app) == {"failed": 1.0}
    assert "<Leave />" in xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueSid": QUEUE, "QueueTime": "25"})


def test_the_queue_is_noted_at_the_first_wait_round_only(make_app: AppFactory, redis_url: str) -> None:
    """The QueueSid and lane stay the same while the caller waits in one queue: the first round notes them, later
    rounds (each another Redis write) do not."""
    import redis

    app = with_twilio(make_app)
    transport = InProcess(app)
    caller = waiting(app, ["1"])
    xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueSid": QUEUE, "QueueTime": "0"})
    record = redis.Redis.from_url(redis_url)
    assert record.hget(f"ivr:call:{caller}", "queue_sid") == QUEUE.encode()
    record.hdel(f"ivr:call:{caller}", "queue_sid")
    xml(transport, GENERAL_WAIT, {"CallSid": caller, "QueueSid": QUEUE, "QueueTime": "20"})
    assert record.hget(f"ivr:call:{caller}", "queue_sid") is None
