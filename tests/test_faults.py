"""Faults: Redis killed before and during calls, the RQ worker away, a gunicorn worker killed mid-request, a broken
config written under load, and the fallback URL with nothing left but the boot config."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import redis
import structlog
from rq import Queue
from rq.registry import FailedJobRegistry

from ivr import jobs, logs
from tests.support import AppFactory, call, rq_worker

OPEN = "2025-05-03T03:00:00+09:00"


def test_a_log_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each JSON log line reaches stderr in one write, so lines of two gunicorn workers sharing it never run
    together (with PYTHONUNBUFFERED a line and its newline were two writes)."""
    writes: list[str] = []

    class Stderr:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    saved = structlog.get_config()
    monkeypatch.setattr(sys, "stderr", Stderr())
    try:
        logs.configure("info", "json")
        structlog.get_logger("ivr").info("webhook", step="menu")
    finally:
        structlog.configure(**saved)
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
                      "outcome": "answered", "hour": "03", "overflowed": "1", "waited": "95"},
     "ivr:agg:gw-2025:2025-05-03",
     {"calls": 1, "calls|women": 1, "calls|women|h03": 1, "answered|women": 1, "overflowed|women": 1,
      "wait|women|le120": 1}),
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
        monkeypatch.setattr(jobs, "get_current_job", lambda: SimpleNamespace(connection=DiesAfter(client, [survive])))
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
                                       "wait|general|le30": 1, "calls|disaster": 1, "calls|disaster|h03": 1,
                                       "answered|disaster": 1, "calls|women": 1, "calls|women|h03": 1,
                                       "answered|women": 1, "overflowed|women": 1, "wait|women|le30": 1},
        "ivr:agg:gw-2025:2025-05-03:tsunagari": {"queue:bridged": 2, "wait:le30": 2},
        "ivr:agg:gw-2025:2025-05-03:hinata": {"dial:completed": 1},
        "ivr:agg:gw-2025:2025-05-03:sakura": {"queue:leave": 1, "wait:le600": 1}}
    for func, args in waiting:  # delivered again, as after a requeue of jobs whose worker was lost
        queue.enqueue(func, *args)
    assert rq_worker(redis_url, "--burst").wait(timeout=60) == 0
    assert aggregates(client) == counted
    assert queue.count == 0 and FailedJobRegistry(queue=queue).count == 0
