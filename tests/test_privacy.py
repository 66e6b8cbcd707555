"""Privacy: numbers scrubbed from any log line, and unique callers counted without keeping a number."""

from __future__ import annotations

import json
import re

import pytest
import redis
import structlog

from ivr.logs import drop_phone_numbers, scrub
from tests.support import AppFactory, call, logged_writes

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
    """Two callers (one calling twice) and one withheld call: 2 unique, 1 withheld, no number in Redis and no key
    to hash one with (the day's key is made from IVR_HASH_KEY, never stored)."""
    app = make_app(OPEN)
    a, b = "+819011110000", "+819022220000"
    for caller in (a, b, a, "anonymous"):
        call(app, ["1"], caller=caller)
    store = app.extensions["ivr.store"]
    assert store.unique_callers("2025-05-03") == (2, 1)
    client = redis.Redis.from_url(redis_url)
    assert [] == list(client.scan_iter("ivr:daykey:*"))
    for k in client.scan_iter():
        dump = repr(client.dump(k))
        for number in (a, b):
            assert number[1:] not in dump and number[-8:] not in dump


PHONE_SHAPED = [
    ("+819012345678", "[number removed]"),
    ("+81 90 1234 5678", "[number removed]"),
    ("+81-90-1234-5678", "[number removed]"),
    ("090-1234-5678", "[number removed]"),
    ("09012345678", "[number removed]"),
    ("090.1234.5678", "[number removed]"),
    ("(03) 1234 5678", "[number removed]"),
    ("(090) 1234-5678", "[number removed]"),
    ("+81 (0)3-1234-5678", "[number removed]"),
    ("(09012345678)", "([number removed])"),
    ("0120 279 338", "[number removed]"),
    ("n=819012345678", "n=[number removed]"),
    ("03-1234-5678", "[number removed]"),
    ("0120-279-338", "[number removed]"),
    ("ends 12345678", "ends [number removed]"),
    ("20250503", "[number removed]"),  # a bare 8-digit run may be a number's last 8 digits: removed, date or not
    ("KeyError: '+819012345678'", "KeyError: '[number removed]'"),
    ("ValueError: invalid From 090-1234-5678 (expected E.164)",
     "ValueError: invalid From [number removed] (expected E.164)"),
    ("on 2025-05-03 from 090-1234-5678", "on 2025-05-03 from [number removed]"),
    ("2025-05-03 09012345678", "2025-05-03 [number removed]"),
    ("at 18:00 from +819012345678", "at 18:00 from [number removed]"),
    ("09012345678 at 2025-05-03T18:00:00+09:00", "[number removed] at 2025-05-03T18:00:00+09:00"),
    ("090-1234-5678 18:00", "[number removed] 18:00"),
    ("18:00+819012345678", "18:00[number removed]"),  # an offset is two digits, not the start of a number
    ("2025-05-03T18:00:00.09012345678", "2025-05-03T18:00:00.[number removed]"),  # more than nanoseconds
    ("2025-05-0312345678", "[number removed]"),  # not a date: the digits run on
    ("12025-05-03", "[number removed]"),
    ("7:33775899", "7:[number removed]"),  # a time's minutes never run on into a number's digits
    ("1:0901234567", "1:[number removed]"),
    ("at 18:00:0012345678", "at 18:00:[number removed]"),  # nor its seconds
    ("2025-05-03T18:0009012345678", "2025-05-03T18:[number removed]"),
]
NOT_PHONES = [
    "2025-05-03",
    "2025-05-03T18:00:00+09:00",
    "2025-05-03T09:00:00Z",
    "2025-05-03t09:00:00z",
    "2025-05-02T18:00:00+00:00",
    "2025-05-02T18:00:00.123456+00:00",
    "2025-05-03 18:00:00.123456",
    "2025-05-03 18:00:00,123",
    "2025-05-03T18:00",
    "2025-05-03T18:00:00-05:00",
    "2025-05-03T18:00:00+0900",
    "20250503T180000+0900",
    "20250503T180000.5Z",
    "1999-12-31T23:59:59.999999999Z",
    "18:00",
    "18:00:00",
    "18:00:00.123456",
    "9:30",
    "window 2025-04-29/2025-05-06",
    "2025-04-29..2025-05-06",
    "opens 2025-04-29 closes 2025-05-06",
    "from 2025-05-03 18:00 to 2025-05-03 23:59:59.5",
    "Invalid isoformat string: '2025-05-03T18:00:00+09:00x'",
    "clock now=2025-05-02T18:00:00+00:00 offset_seconds=-12.5",
    'File "/app/x.py", line 123',
    "latency_ms=12.5 status=204",
    "shift 00:00-24:00",
]


@pytest.mark.parametrize(("text", "expected"), PHONE_SHAPED)
def test_anything_phone_shaped_is_removed(text: str, expected: str) -> None:
    """A number in any of the ways it is written (E.164, national, last 8 digits, in exception text, beside a date or
    a time) never reaches a log line."""
    assert expected == scrub(text)


@pytest.mark.parametrize("text", NOT_PHONES)
def test_dates_times_and_instants_are_left_alone(text: str) -> None:
    """An operator reading the log sees the ISO dates, instants and times as written, not `[number removed]T18:00`."""
    assert text == scrub(text)


def test_a_scrubbed_event_keeps_its_instants() -> None:
    """A whole log event: the number goes, the instants in its values and in exception text stay."""
    event = {"event": "clock", "now": "2025-05-03T18:00:00+09:00", "day": "2025-05-03",
             "exception": "Traceback ...\nValueError: '+819012345678' at 2025-05-03 18:00:00.123456"}
    assert drop_phone_numbers(None, "info", dict(event)) == {
        "event": "clock", "now": "2025-05-03T18:00:00+09:00", "day": "2025-05-03",
        "exception": "Traceback ...\nValueError: '[number removed]' at 2025-05-03 18:00:00.123456"}


def fail_holding_a_number() -> None:
    number = "+819012345678"  # a local variable: a rich or better-exceptions traceback would show it
    raise RuntimeError(f"no route for {number}")


@pytest.mark.parametrize(("fmt", "tty"), [("console", False), ("auto", True), ("json", False)])
def test_a_logged_exception_never_shows_the_number_a_local_variable_held(fmt: str, tty: bool) -> None:
    """A traceback in the log, on a terminal or in JSON, shows where it failed but no caller's number from a local."""
    with logged_writes(fmt, tty) as writes:
        try:
            fail_holding_a_number()
        except RuntimeError:
            structlog.get_logger("ivr").exception("webhook_failed")
    assert len(writes) == 1
    text = re.sub(r"\x1b\[[0-9;]*m", "", writes[0])  # without the terminal's colours
    if fmt == "json":
        text = json.loads(text)["exception"]
    assert [s for s in ("+819012345678", "819012345678", "9012345678", "12345678", "number = ") if s in text] == []
    assert "RuntimeError: no route for [number removed]" in text
    assert 'in fail_holding_a_number\n    raise RuntimeError(f"no route for {number}")' in text
