"""Faults: workers sharing one log, the RQ worker away or killed part-way, Redis killed before and during calls, a
gunicorn worker killed mid-request, a broken config written under load or while workers boot, and the fallback URL
with nothing left but the boot config."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import structlog
from rq import Queue
from rq.registry import FailedJobRegistry

from ivr.state import config, jobs, store
from ivr.state.config import request_reload
from ivr.tools.standin import InProcess, OverHttp, StandIn, twiml_problem
from tests.support import (
    BASE,
    CALLER,
    TOKEN,
    AppFactory,
    RedisServer,
    call,
    gunicorn_workers,
    logged_writes,
    post_signed,
    rq_worker,
    running_server,
    signed,
    wait_for,
    worker_holding,
)
from tests.test_queue import capped_routing
from tests.test_reload import ADMIN, copies, women_to_niji

OPEN = "2025-05-03T03:00:00+09:00"


# -- gunicorn workers sharing one log -------------------------------------------------------------------------
def test_a_log_line_is_one_write() -> None:
    """Each JSON log line reaches stderr in one write, so lines of two gunicorn workers sharing it never run
    together (with PYTHONUNBUFFERED a line and its newline were two writes)."""
    with logged_writes("json") as writes:
        structlog.get_logger("ivr").info("webhook", step="menu")
    assert len(writes) == 1 and writes[0].endswith("}\n")
    assert json.loads(writes[0])["step"] == "menu"


# -- the RQ worker: away for a while, killed part-way through a job ----------------------------------------------
class Killed(BaseException):
    """The worker process died at this point (nothing after it runs, no handler catches it)."""


class DiesAfter:
    """A Redis client, or a pipeline made from it, for a worker that dies after `budget[0]` more calls: every call
    before that reaches Redis, the next one never does."""

    def __init__(self, target: Any, budget: list[int]):
        self._target, self._budget = target, budget

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def step(*args: Any, **kwargs: Any) -> Any:
            if self._budget[0] == 0:
                raise Killed(name)
            self._budget[0] -= 1
            out = attr(*args, **kwargs)
            return DiesAfter(out, self._budget) if name == "pipeline" else out

        return step

    def __enter__(self) -> DiesAfter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._target.__exit__(*exc)


FOLDS = [
    (jobs.fold_call, {"call": "c0ffee", "campaign": "gw-2025", "day": "2025-05-03", "option": "women",
                      "outcome": "answered", "hour": "03", "overflowed": "1", "waited": "95", "lang": "ja",
                      "talk": "840"},
     "ivr:agg:gw-2025:2025-05-03",
     {"calls": 1, "calls|women": 1, "calls|women|h03": 1, "answered|women": 1, "answered|h03": 1,
      "overflowed|women": 1,
      "wait|women|le120": 1, "lang|ja": 1, "lang|ja|answered": 1, "talk|women|h03": 840, "talked|women|h03": 1}),
    (jobs.fold_outcome, {"call": "c0ffee", "step": "1", "kind": "queue", "campaign": "gw-2025", "day": "2025-05-03",
                         "partner": "sakura", "result": "bridged", "wait_bucket": "le120"},
     "ivr:agg:gw-2025:2025-05-03:sakura", {"queue:bridged": 1, "wait:le120": 1}),
]


@pytest.mark.parametrize(("job", "record", "counts", "expected"), FOLDS, ids=["call", "outcome"])
def test_a_fold_killed_part_way_and_retried_counts_once(job: Callable[[dict[str, str]], bool], record: dict[str, str],
                                                        counts: str, expected: dict[str, int], redis_url: str,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Wherever the worker dies inside a fold, running the job again (a retry, a requeue) leaves each counter at
    exactly one, and a third delivery changes nothing: reports neither lose nor double a call."""
    client = redis.Redis.from_url(redis_url)
    for survive in range(20):
        client.flushall()
        dying = SimpleNamespace(connection=DiesAfter(client, [survive]))
        monkeypatch.setattr(jobs, "get_current_job", lambda: dying)  # noqa: B023 (called in this iteration)
        try:
            job(record)
        except Killed:
            pass
        else:
            break  # the job needs fewer calls than this: every point of death has been tried
        monkeypatch.setattr(jobs, "get_current_job", lambda: SimpleNamespace(connection=client))
        assert job(record) is True, f"died after {survive} calls: the retry did not count"
        assert {k.decode(): int(v) for k, v in client.hgetall(counts).items()} == expected
        assert job(record) is False
        assert {k.decode(): int(v) for k, v in client.hgetall(counts).items()} == expected
    assert 2 <= survive < 20


def aggregates(client: redis.Redis) -> dict[str, dict[str, int]]:
    return {k.decode(): {f.decode(): int(v) for f, v in client.hgetall(k).items()}
            for k in client.scan_iter("ivr:agg:*")}


def test_calls_go_on_without_the_rq_worker_and_are_counted_once_when_it_returns(make_app: AppFactory,
                                                                                redis_url: str) -> None:
    """With no RQ worker running, callers still reach partners and their counts wait in the queue; a worker that
    comes back folds each once, and the same jobs delivered again change nothing."""
    app = make_app(OPEN)
    reached = [call(app, ["1"]), call(app, ["6"]), call(app, ["5"], wait_rounds=[13, 1])]
    assert [r.connected.target if r.connected else None for r in reached] == [
        "queue general-tsunagari", "phone +15005550006", "queue general-tsunagari"]
    client = redis.Redis.from_url(redis_url)
    queue = Queue("ivr", connection=client)
    waiting = [(j.func_name, j.args) for j in queue.get_jobs()]
    assert len(waiting) == 7 and aggregates(client) == {}  # 3 calls, 4 queue or dial outcomes
    assert rq_worker(redis_url, "--burst").wait(timeout=60) == 0
    counted = aggregates(client)
    assert counted == {
        "ivr:agg:gw-2025:2025-05-03": {"calls": 3, "calls|general": 1, "calls|general|h03": 1, "answered|general": 1,
                                       "answered|h03": 3,
                                       "wait|general|le30": 1, "calls|disaster": 1, "calls|disaster|h03": 1,
                                       "answered|disaster": 1, "calls|women": 1, "calls|women|h03": 1,
                                       "answered|women": 1, "overflowed|women": 1, "wait|women|le30": 1,
                                       "lang|ja": 3, "lang|ja|answered": 3, "talked|general|h03": 1,
                                       "talked|disaster|h03": 1, "talked|women|h03": 1, "talk|general|h03": 0,
                                       "talk|disaster|h03": 300, "talk|women|h03": 0},  # frozen clock; 300 s dial
        "ivr:agg:gw-2025:2025-05-03:tsunagari": {"queue:bridged": 2, "wait:le30": 2},
        "ivr:agg:gw-2025:2025-05-03:hinata": {"dial:completed": 1},
        "ivr:agg:gw-2025:2025-05-03:sakura": {"queue:leave": 1, "wait:le600": 1}}
    for func, args in waiting:  # delivered again, as after a requeue of jobs whose worker was lost
        queue.enqueue(func, *args)
    assert rq_worker(redis_url, "--burst").wait(timeout=60) == 0
    assert aggregates(client) == counted
    assert queue.count == 0 and FailedJobRegistry(queue=queue).count == 0


# -- Redis killed before and during calls ---------------------------------------------------------------------
class KillsRedis(InProcess):
    """Twilio posting to the app, with Redis killed just before request number `at` of the call."""

    def __init__(self, app: Any, server: RedisServer, at: int):
        super().__init__(app)
        self.server, self.at, self.sent = server, at, 0

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
        self.sent += 1
        if self.sent == self.at:
            self.server.kill()
        return super().post(url, params, signature)


@pytest.fixture
def store_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The monotonic clock the store's back-off reads, moved by the test instead of slept through."""
    now = [1000.0]
    monkeypatch.setattr(store, "time", SimpleNamespace(monotonic=lambda: now[0], time=time.time))
    return now


def degraded(app: Any) -> tuple[bool, str]:
    """What /readyz (which tries Redis) and then the ivr_state_degraded gauge say."""
    client = app.test_client()
    ready = not client.get("/readyz").get_json()["store"]
    return ready, next(x for x in client.get("/metrics").get_data(as_text=True).splitlines()
                       if x.startswith("ivr_state_degraded "))


def test_with_redis_killed_before_the_calls_every_option_reaches_someone(make_app: AppFactory,
                                                                         own_redis: RedisServer) -> None:
    """Redis dead from the start: every option still reaches its partner, a caller whose whole chain is full
    hears the lines open now, and /readyz and ivr_state_degraded say the service is degraded."""
    app = make_app(OPEN, REDIS_URL=own_redis.url)
    own_redis.kill()
    reached = {keys: call(app, list(keys)) for keys in [("1",), ("2",), ("3", "2"), ("4",), ("5",), ("6",)]}
    assert {k: r.connected.target if r.connected else None for k, r in reached.items()} == {
        ("1",): "queue general-tsunagari", ("2",): "queue under18-kodomo", ("3", "2"): "queue foreign-worldbridge",
        ("4",): "queue gender-niji", ("5",): "queue women-sakura", ("6",): "phone +15005550006"}
    full = call(app, ["1", "-"], queue_result="queue-full")
    assert full.connected is None and "よりそいホットライン、電話番号 0120-279-338 で相談できます。" in full.heard()
    for result in [*reached.values(), full]:
        assert not result.stranded and not result.fallback_used
        assert {status for _, status in result.requests} <= {200, 204}
    assert degraded(app) == (True, "ivr_state_degraded 1.0")


def test_redis_killed_at_any_step_of_a_call_and_back_without_a_restart(make_app: AppFactory, own_redis: RedisServer,
                                                                       store_clock: list[float]) -> None:
    """Redis killed before each request of a call in turn (dial, no answer, overflow to a queue, status): the
    caller reaches the next partner every time. Once Redis is back the same app uses it again, and says so."""
    app = make_app(OPEN, REDIS_URL=own_redis.url)
    steps = len(call(app, ["6"], dial_status="no-answer").requests)
    assert steps == 6  # incoming, menu, dial-done, wait, queue-done, status
    for at in range(1, steps + 1):
        result = StandIn(KillsRedis(app, own_redis, at), TOKEN, BASE, keys=["6"], dial_status="no-answer",
                         caller=CALLER).call()
        assert result.connected is not None and result.connected.target == "queue general-tsunagari", at
        assert not result.fallback_used and {s for _, s in result.requests} <= {200, 204}, at
        assert degraded(app) == (True, "ivr_state_degraded 1.0")
        own_redis.start()
        store_clock[0] += store.RETRY_AFTER  # the back-off is over: the next request tries Redis again
    assert degraded(app) == (False, "ivr_state_degraded 0.0")
    after = call(app, ["4"])
    record = redis.Redis.from_url(own_redis.url).hgetall(f"ivr:call:{after.call_sid}")
    assert (record[b"partner"], record[b"result"]) == (b"niji", b"answered")


# -- a gunicorn worker killed mid-request ---------------------------------------------------------------------
def half_sent(base: str, path: str, params: dict[str, str]) -> socket.socket:
    """A signed webhook whose body stops half-way: the worker that takes it waits inside the request for the rest."""
    body = urllib.parse.urlencode(params).encode()
    host, port = urllib.parse.urlsplit(base).netloc.split(":")
    conn = socket.create_connection((host, int(port)), timeout=10)
    conn.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-Twilio-Signature: {signed(base + path, params)}\r\n"
                 f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                 + body[:len(body) // 2])
    return conn


def test_a_worker_killed_mid_request_then_twilio_retries_the_step(redis_url: str, tmp_path: Path) -> None:
    """A gunicorn worker is killed while it reads a caller's menu step. Twilio's retry of that step (same CallSid,
    same parameters) is served, and a second retry gets the same TwiML: the caller holds one place at the capped
    partner, and the call is counted once."""
    env = {"REDIS_URL": redis_url, "IVR_CLOCK": OPEN, "IVR_ROUTING_FILE": capped_routing(tmp_path, capacity=2)}
    http, client = OverHttp(), redis.Redis.from_url(redis_url)
    twilio = {"AccountSid": "AC" + "0" * 32, "From": CALLER, "To": "+81120494949", "CallStatus": "in-progress"}
    first, second, third = ({**twilio, "CallSid": "CA" + c * 32} for c in "abc")
    with running_server(tmp_path, env, workers=2) as (proc, base):
        assert post_signed(http, base + "/voice/incoming", first)[0] == 200
        menu = base + "/voice/menu?n=1"
        conn = half_sent(base, "/voice/menu?n=1", {**first, "Digits": "5"})
        holding: list[int | None] = []
        wait_for(lambda: holding.append(worker_holding(conn, gunicorn_workers(proc.pid))) or holding[-1],
                 "a worker reading the half-sent request")
        worker = holding[-1]
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        try:
            assert conn.recv(1024) == b""  # the connection closes with no answer: Twilio would retry
        except ConnectionResetError:
            pass
        conn.close()
        retried = [post_signed(http, menu, {**first, "Digits": "5"}) for _ in range(2)]
        assert retried[0] == retried[1] and retried[0][0] == 200
        assert enqueued(retried[0][2]) == "women-sakura"
        assert worker not in gunicorn_workers(proc.pid)
        assert client.zcard("ivr:lease:sakura") == 1
        assert enqueued(post_signed(http, menu, {**second, "Digits": "5"})[2]) == "women-sakura"
        assert enqueued(post_signed(http, menu, {**third, "Digits": "5"})[2]) == "general-tsunagari"  # cap of 2
        done = base + "/voice/queue-done?q=women-sakura&p=sakura&o=women&l=ja&s=0"
        outcome = {**first, "QueueResult": "bridged", "QueueTime": "40"}
        assert post_signed(http, done, outcome) == post_signed(http, done, outcome)
        ended = {**first, "CallStatus": "completed"}
        assert [post_signed(http, base + "/voice/status", ended)[0] for _ in range(2)] == [204, 204]
    assert client.zcard("ivr:lease:sakura") == 1  # the first gave its place back; the second still holds one
    assert rq_worker(redis_url, "--burst").wait(timeout=60) == 0
    counted = aggregates(client)
    assert counted["ivr:agg:gw-2025:2025-05-03"].pop("talk|women|h03") >= 0  # since it was queued, less QueueTime
    assert counted == {
        "ivr:agg:gw-2025:2025-05-03": {"calls": 1, "calls|women": 1, "calls|women|h03": 1, "answered|women": 1, "answered|h03": 1,
                                       "wait|women|le60": 1, "lang|ja": 1, "lang|ja|answered": 1,
                                       "talked|women|h03": 1},
        "ivr:agg:gw-2025:2025-05-03:sakura": {"queue:bridged": 1, "wait:le60": 1}}


def test_the_stand_in_takes_a_dropped_connection_as_a_failed_request() -> None:
    """A server that resets the connection (a worker killed mid-request) is a failed request to the stand-in, as to
    Twilio, which then asks the fallback URL: `ivr call --url` reports it instead of crashing."""
    listener = socket.create_server(("127.0.0.1", 0))

    def reset_the_first() -> None:
        conn, _ = listener.accept()
        conn.recv(1024)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
        conn.close()

    dropper = threading.Thread(target=reset_the_first)
    dropper.start()
    try:
        status, _, body = OverHttp(timeout=10).post(f"http://127.0.0.1:{listener.getsockname()[1]}/voice/incoming",
                                                    {"CallSid": "CA" + "0" * 32}, "signature")
    finally:
        dropper.join(timeout=10)
        listener.close()
    assert status == 599 and b"[Errno 104] Connection reset by peer" in body  # while sending or while reading


def enqueued(body: bytes) -> str:
    """The queue a TwiML answer puts the caller in."""
    queue = ET.fromstring(body).find("Enqueue")
    assert queue is not None
    return (queue.text or "").strip()


# -- a broken config written under load -----------------------------------------------------------------------
def test_a_broken_config_under_load_never_reaches_a_caller(redis_url: str, tmp_path: Path) -> None:
    """Threads keep posting signed menu steps while a broken routing file (which would also move the women's line)
    is written, refused by /admin/reload and taken up by a SIGHUP: every answer is valid TwiML from the last good
    config. A good file then applies, and every worker started after it serves it."""
    menu, routing = copies(tmp_path)
    env = {"REDIS_URL": redis_url, "IVR_CLOCK": OPEN, "IVR_MENU_FILE": str(menu), "IVR_ROUTING_FILE": str(routing),
           "IVR_ADMIN_TOKEN": ADMIN}
    phase = [0]  # 1 broken file written, 2 every worker restarted on it, 3 good file reloaded, 4 every worker new
    answers: list[tuple[int, int, tuple[int, str, bytes]]] = []
    stop = threading.Event()

    def caller_steps(thread: int) -> None:
        http = OverHttp()
        for n in range(3000):
            if stop.is_set():
                return
            params = {"CallSid": f"CA{thread:02x}{n:030x}", "Digits": "5", "To": "+81120494949", "From": CALLER}
            started = phase[0]
            answer = post_signed(http, base + "/voice/menu?n=1", params)
            answers.append((started, phase[0], answer))  # the phase once answered: read after the request, not before

    def new_workers(old: set[int]) -> None:
        wait_for(lambda: len(now := gunicorn_workers(proc.pid)) == 2 and not now & old, "every worker replaced")

    def answered_in(p: int) -> None:
        wait_for(lambda: sum(started == p for started, _, _ in answers) >= 5, f"answers in phase {p}")

    good = routing.read_text(encoding="utf-8")
    women_to_niji(routing)
    broken = routing.read_text(encoding="utf-8").replace("kind: phone", "kind: pigeon")
    routing.write_text(good, encoding="utf-8")
    with running_server(tmp_path, env, workers=2) as (proc, base):
        booted: set[int] = set()  # both workers up (and the last good config kept) before any edit
        wait_for(lambda: booted.add(ready(base, ADMIN)["details"]["worker"]) or len(booted) == 2,
                 "both workers answering")
        threads = [threading.Thread(target=caller_steps, args=(n,)) for n in range(3)]
        for t in threads:
            t.start()
        try:
            answered_in(0)
            routing.write_text(broken, encoding="utf-8")
            phase[0] = 1
            assert reload(base).status == 422
            old = gunicorn_workers(proc.pid)
            os.kill(proc.pid, signal.SIGHUP)
            new_workers(old)
            phase[0] = 2
            answered_in(2)
            routing.write_text(good, encoding="utf-8")
            women_to_niji(routing)
            phase[0] = 3
            old = gunicorn_workers(proc.pid)
            assert reload(base).status == 200
            new_workers(old)
            phase[0] = 4
            answered_in(4)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
    for started, ended, (status, ctype, body) in answers:
        assert twiml_problem(status, ctype, body) is None, (started, status, body[:200])
        target = enqueued(body)
        if ended <= 2:
            assert target == "women-sakura", (started, ended)
        elif started >= 4:
            assert target == "gender-niji", (started, ended)
        else:
            assert target in ("women-sakura", "gender-niji")


def ready(base: str, token: str | None = None) -> dict[str, Any]:
    """What /readyz answers; with the admin token, its `details` (worker, config, store, clock) too."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(f"{base}/readyz", headers=headers),  # noqa: S310
                                timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def reload(base: str) -> Any:
    req = urllib.request.Request(f"{base}/admin/reload", method="POST",  # noqa: S310
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    try:
        return urllib.request.urlopen(req, timeout=10)  # noqa: S310
    except urllib.error.HTTPError as e:
        return e


def test_a_file_rewritten_while_a_worker_boots_never_becomes_the_last_good(make_app: AppFactory, tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The routing file is edited, a reload requested, and the file rewritten broken just after a booting worker
    validated the edit: the broken bytes are never kept as the last good config, so the workers started after
    the next reload still boot and route callers (before, every later worker failed to boot and gunicorn halted)."""
    menu, routing = copies(tmp_path)
    settings = {"IVR_MENU_FILE": str(menu), "IVR_ROUTING_FILE": str(routing), "IVR_RUNTIME_DIR": str(tmp_path / "rt")}
    make_app(OPEN, **settings)
    women_to_niji(routing)
    broken = routing.read_text(encoding="utf-8").replace("kind: phone", "kind: pigeon")
    validated = config.load_routing

    def then_rewritten(*args: Any, **kwargs: Any) -> Any:
        loaded = validated(*args, **kwargs)
        routing.write_text(broken, encoding="utf-8")  # the next save of an editor, mid-boot
        return loaded

    request_reload(tmp_path / "rt")
    with monkeypatch.context() as mp:
        mp.setattr(config, "load_routing", then_rewritten)
        booting = make_app(OPEN, **settings)
    assert call(booting, ["5"]).connected.target == "queue women-sakura"  # type: ignore[union-attr]
    request_reload(tmp_path / "rt")
    after = make_app(OPEN, **settings)
    assert call(after, ["5"]).connected.target == "queue women-sakura"  # type: ignore[union-attr]


def test_a_worker_starting_beside_another_boots_on_the_config_it_kept(make_app: AppFactory, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers start together; the routing file breaks after the first validated and kept it but before the
    second read it. The second boots on the config the first kept, rather than failing to boot (which stops
    gunicorn, and every call with it)."""
    menu, routing = copies(tmp_path)
    settings = {"IVR_MENU_FILE": str(menu), "IVR_ROUTING_FILE": str(routing), "IVR_RUNTIME_DIR": str(tmp_path / "rt")}
    first = config.load(menu, routing)
    validated, kept = config.load_routing, []

    def kept_by_the_first_then_broken(*args: Any, **kwargs: Any) -> Any:
        if not kept:
            config.LastGood(tmp_path / "rt").save(first)
            routing.write_text("plans: [\n", encoding="utf-8")
            kept.append(first.digest)
        return validated(*args, **kwargs)

    monkeypatch.setattr(config, "load_routing", kept_by_the_first_then_broken)
    second = make_app(OPEN, **settings)
    assert kept and second.extensions["ivr.config"].current.digest == first.digest  # type: ignore[attr-defined]
    assert call(second, ["6"]).connected.target == "phone +15005550006"  # type: ignore[union-attr]


# -- the fallback URL with nothing left -----------------------------------------------------------------------
FALLBACK_LINE = "ただいま、システムに不具合が起きています。相談員におつなぎしますので、そのままお待ちください。"


def test_fallback_with_redis_dead_and_the_config_files_unreadable(own_redis: RedisServer, tmp_path: Path) -> None:
    """Redis killed, the menu file turned into a directory and the routing file into bytes that are not text, then
    every gunicorn worker killed and restarted in that state: the number's fallback URL still puts the caller
    through to the general line, and so does a new call."""
    menu, routing = copies(tmp_path)
    env = {"REDIS_URL": own_redis.url, "IVR_CLOCK": OPEN, "IVR_MENU_FILE": str(menu), "IVR_ROUTING_FILE": str(routing)}
    with running_server(tmp_path, env, workers=2) as (proc, base):
        own_redis.kill()
        menu.unlink()
        menu.mkdir()
        routing.write_bytes(b"\xff\xfe\x00 not a routing file")
        for workers in ("running", "restarted"):
            if workers == "restarted":
                old = gunicorn_workers(proc.pid)
                for pid in old:
                    os.kill(pid, signal.SIGKILL)
                wait_for(lambda: len(now := gunicorn_workers(proc.pid)) == 2 and not now & old,  # noqa: B023
                         "both workers restarted")
            fallback = StandIn(OverHttp(), TOKEN, base, caller=CALLER).call("/voice/fallback")
            assert fallback.heard()[0] == FALLBACK_LINE, workers
            assert fallback.connected is not None and fallback.connected.target == "queue general-tsunagari", workers
            assert not fallback.fallback_used and {s for _, s in fallback.requests} <= {200, 204}, workers
            fresh = StandIn(OverHttp(), TOKEN, base, keys=["1"], caller=CALLER).call()
            assert fresh.connected is not None and fresh.connected.target == "queue general-tsunagari", workers
        assert (False, "store_unreachable") == (ready(base)["store"], ready(base)["reason"])
