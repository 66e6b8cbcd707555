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


def test_a_request_that_reads_gets_its_replies_from_the_shared_transaction(make_app: AppFactory, redis_url: str,
                                                                          shared: None) -> None:
    """The status callback reads the call's record: a round trip of its own before, about as much CPU under gevent
    as the rest of a step. It now goes with the worker's shared transaction, reads what is in Redis, and its
    writes (the fold job) are there when its answer comes back."""
    app = make_app(OPEN)
    store = app.extensions["ivr.store"]  # type: ignore[attr-defined]
    client = redis.Redis.from_url(redis_url)
    client.hset(f"ivr:call:{SID}", mapping={"campaign": "gw-2025", "window": "open", "option": "women"})
    answer = post(app, "/voice/status", {**TWILIO, "CallStatus": "completed", "CallDuration": "30"})
    assert answer.status_code in (200, 204)
    assert store.outbox is not None
    assert client.llen("rq:queue:ivr") == 1  # the fold job, sent before the answer
    from rq.job import Job

    job = Job.fetch(client.lindex("rq:queue:ivr", 0).decode(), connection=client)  # type: ignore[union-attr]
    assert "women" in repr(job.args)  # the record it read travels with the job


def test_a_redis_error_while_a_shared_transaction_is_built_degrades_the_store(make_app: AppFactory,
                                                                             shared: None) -> None:
    """Queueing a command can reach Redis itself (RQ asks for the server's version once). An error there escaped
    the store: the sender only logged it, every request in the batch lost its writes and reads, and the store did
    not back off. It is now a failed transaction like any other: the store is degraded and says so."""
    app = make_app(OPEN)
    store = app.extensions["ivr.store"]  # type: ignore[attr-defined]

    def unreachable(pipe: object) -> None:
        raise redis.ConnectionError("Redis went away while the command was queued")

    assert store.read("x", unreachable) is None
    assert store.degraded
    assert store.read("x", lambda pipe: pipe.get("k")) is None  # while degraded, nothing is sent


def test_each_request_gets_its_own_replies_from_a_shared_transaction() -> None:
    """Several requests' reads in one transaction: each gets the replies to its own commands, in order; when the
    transaction fails, each gets None (the store then says it is degraded)."""
    import threading

    class Pipe(list[str]):
        def get(self, name: str) -> None:
            self.append(name)

    go = threading.Event()

    def send(batch: list[object]) -> list[str] | None:
        go.wait(2)
        pipe = Pipe()
        for commands in batch:
            commands(pipe)  # type: ignore[operator]
        return None if "boom" in pipe else [f"reply:{name}" for name in pipe]

    box = Outbox(send)
    got: dict[str, object] = {}

    def ask(name: str, keys: list[str]) -> None:
        got[name] = box.ask([lambda pipe: pipe.get("w")], lambda pipe: [pipe.get(k) for k in keys])

    askers = [threading.Thread(target=ask, args=(n, keys)) for n, keys in (("a", ["x", "y"]), ("b", ["z"]))]
    for t in askers:
        t.start()
    go.set()
    for t in askers:
        t.join(3)
    assert got == {"a": ["reply:x", "reply:y"], "b": ["reply:z"]}
    assert box.ask([], lambda pipe: pipe.get("boom")) is None


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


GEVENT_WORKER = """
import json, sys, time
from gevent import monkey
monkey.patch_all()
import gevent
from ivr.state.outbox import Outbox, until_idle

sizes = []
def send(batch):
    sizes.append(len(batch))
    gevent.sleep(0.001)  # the round trip to Redis
box = Outbox(send, until_idle if sys.argv[1] == "until_idle" else None)
answered = []
def serve(i):
    gevent.sleep(i * 0.0002)  # requests arriving 0.2 ms apart
    started = time.perf_counter()
    while time.perf_counter() - started < 0.0003:  # each step's CPU: the next request has arrived by its end
        pass
    answered.append(box.add([i]).wait(2))
gevent.joinall([gevent.spawn(serve, i) for i in range(8)], timeout=5)
print(json.dumps({"sizes": sizes, "answered": answered.count(True)}))
"""


@pytest.mark.parametrize(("gather", "transactions"), [("until_idle", [8]), ("none", None)])
def test_under_gevent_a_transaction_waits_for_the_requests_being_served(gather: str,
                                                                         transactions: list[int] | None) -> None:
    """Under load a gevent worker serves the next request while one waits for its transaction. Sent as soon as the
    first request asked, a transaction held the writes of 2 or 3 requests and its fixed cost was paid that often;
    waiting until the worker has nothing else to run (until_idle), 8 requests arriving 0.2 ms apart, each 0.3 ms
    of work, share one; sent at once, they took several (here [1, 6, 1]). (gevent patches the standard library, so
    this runs in a process of its own.)"""
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", GEVENT_WORKER, gather], capture_output=True, text=True, timeout=60,
                          check=True)
    result = json.loads(done.stdout)
    assert (result["answered"], sum(result["sizes"])) == (8, 8), done.stderr  # every request answered, writes sent
    if transactions is not None:
        assert result["sizes"] == transactions
    else:
        assert len(result["sizes"]) > 1


def test_a_failing_wait_before_a_batch_never_holds_the_batch_back() -> None:
    """The sender's wait before a batch (until_idle) cannot fail in practice; if it did, the batch still goes."""
    sent: list[int] = []

    def gather() -> None:
        raise RuntimeError("no event loop")

    box = Outbox(lambda batch: sent.append(len(batch)), gather)
    assert box.add([lambda pipe: None]).wait(2)
    assert sent == [1]
