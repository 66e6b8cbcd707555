"""Privacy: numbers scrubbed from any log line, and unique callers counted without keeping a number."""

from __future__ import annotations

import redis

from ivr.logs import drop_phone_numbers
from tests.support import AppFactory, call

OPEN = "2025-05-03T03:00:00+09:00"


def test_phone_shaped_values_are_removed_from_log_events() -> None:
    """E.164, national and last-8-digit forms are removed anywhere in an event; hashes and times are left alone."""
    event = {"event": "x", "note": "from +819012345678 or 090-1234-5678 (ends 12345678)",
             "nested": [{"n": "+81 90 1234 5678"}], "as_int": 819012345678, "call": "12345678abcdef90",
             "latency_ms": 12.5, "status": 204, "where": 'File "/app/x.py", line 123'}
    assert drop_phone_numbers(None, "info", dict(event)) == {
        "event": "x", "note": "from [number removed] or [number removed] (ends [number removed])",
        "nested": [{"n": "[number removed]"}], "as_int": "[number removed]", "call": "12345678abcdef90",
        "latency_ms": 12.5, "status": 204, "where": 'File "/app/x.py", line 123'}


def test_unique_callers_are_estimated_without_the_numbers(make_app: AppFactory, redis_url: str) -> None:
    """Two callers (one calling twice) and one withheld call: 2 unique, 1 withheld, and no number in Redis."""
    app = make_app(OPEN)
    a, b = "+819011110000", "+819022220000"
    for caller in (a, b, a, "anonymous"):
        call(app, ["1"], caller=caller)
    store = app.extensions["ivr.store"]
    assert store.unique_callers("2025-05-03") == (2, 1)
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.ttl("ivr:daykey:2025-05-03") <= 2 * 86400  # the day's key is discarded after the next day
    for k in client.scan_iter():
        dump = repr(client.dump(k))
        for number in (a, b):
            assert number[1:] not in dump and number[-8:] not in dump
