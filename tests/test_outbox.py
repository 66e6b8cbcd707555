"""Writes shared between requests (ivr/state/outbox.py): a request that read nothing from Redis leaves its writes to
the outbox, which sends them with other requests' in one transaction, in order, and answers once they are sent; a
request that read sends its own writes before it answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from ivr.state.outbox import Outbox, share_writes
from tests.support import AppFactory, wait_for
from tests.test_webhooks import SID, TWILIO, post

OPEN = "2025-05-03T03:00:00+09:00"


@pytest.fixture
def shared() -> Iterator[None]:
    share_writes()
    yield
    share_writes(False)


def test_a_request_that_reads_nothing_leaves_its_writes_to_the_outbox(make_app: AppFactory, redis_url: str,
                                                                     shared: None) -> None:
    app = make_app(OPEN)
    store = app.extensions["ivr.store"]  # type: ignore[attr-defined]
    client = redis.Redis.from_url(redis_url)
    answer = post(app, "/voice/incoming", TWILIO)
    assert answer.status_code == 200 and b"<Gather" in answer.data
    assert store.outbox is not None  # the incoming step's writes went there, not out with the answer
    wait_for(lambda: client.hget(f"ivr:call:{SID}", "window") == b"open", "the call's record written by the outbox")
    assert client.hget(f"ivr:call:{SID}", "campaign") == b"gw-2025"
    assert client.ttl(f"ivr:call:{SID}") > 0  # with its expiry, in the same transaction
    post(app, "/voice/menu?n=1", {**TWILIO, "Digits": "1"})
    wait_for(lambda: client.hget(f"ivr:call:{SID}", "option") == b"general", "the menu's write, after the first")


def test_writes_left_to_the_outbox_are_in_redis_when_the_answer_comes_back(make_app: AppFactory, redis_url: str,
                                                                           shared: None) -> None:
    """The outbox sent a request's writes after its answer: the call's next webhook, on another instance, could read
    its record before they landed (a finished call counted under no option). Each answer now waits for them."""
    app = make_app(OPEN)
    client = redis.Redis.from_url(redis_url)
    for n in range(30):
        sid = f"CA{n:032x}"
        answer = post(app, "/voice/menu?n=1", {**TWILIO, "CallSid": sid, "Digits": "1"})
        assert answer.status_code == 200
        assert client.hget(f"ivr:call:{sid}", "option") == b"general", n
    assert app.extensions["ivr.store"].outbox is not None  # type: ignore[attr-defined]


def test_a_request_that_reads_sends_its_own_writes_before_answering(make_app: AppFactory, redis_url: str,
                                                                   shared: None) -> None:
    """The status callback reads the call's record: the writes it made are in Redis when its answer comes back,
    with no outbox involved."""
    app = make_app(OPEN)
    store = app.extensions["ivr.store"]  # type: ignore[attr-defined]
    client = redis.Redis.from_url(redis_url)
    client.hset(f"ivr:call:{SID}", mapping={"campaign": "gw-2025", "window": "open", "hour": "03"})
    answer = post(app, "/voice/status", {**TWILIO, "CallStatus": "completed", "CallDuration": "30"})
    assert answer.status_code in (200, 204)
    assert store.outbox is None
    assert client.llen("rq:queue:ivr") == 1  # the fold job, sent with the request's own round trip


def test_without_sharing_every_request_sends_its_writes_before_answering(make_app: AppFactory,
                                                                        redis_url: str) -> None:
    app = make_app(OPEN)
    client = redis.Redis.from_url(redis_url)
    post(app, "/voice/incoming", TWILIO)
    assert app.extensions["ivr.store"].outbox is None  # type: ignore[attr-defined]
    assert client.hget(f"ivr:call:{SID}", "window") == b"open"


def test_the_outbox_goes_on_after_a_batch_fails() -> None:
    """A batch whose sending raised anything but a Redis error ended the sender's thread: every later write-only
    request would then have waited its full SENT_WAIT, and its writes been lost. The sender logs it and goes on."""
    sent: list[object] = []

    def send(batch: list[object]) -> None:
        if not sent:
            sent.append("failed")
            raise ValueError("a write that cannot be packed")
        sent.append(len(batch))

    box = Outbox(send)
    assert box.add([lambda pipe: None]).wait(2)
    assert box.add([lambda pipe: None]).wait(2)  # the sender survived the failure
    assert sent == ["failed", 1]
