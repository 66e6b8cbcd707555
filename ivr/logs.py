"""structlog, configured once: JSON when not on a terminal, one canonical line per webhook."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from flask import Flask

from ivr.settings import Settings

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# ISO-8601 dates, times and instants are digit runs but never numbers: 2025-05-03, 18:00:00.123456,
# 2025-05-03T18:00:00+09:00, 2025-05-03 18:00:00,123Z, 20250503T180000+0900. A bare 20250503 may be the last 8 digits
# of a number, so it is removed like one.
_Y, _M, _D = r"(?:1[89]|2\d)\d\d", r"(?:0[1-9]|1[0-2])", r"(?:0[1-9]|[12]\d|3[01])"
_YMD, _YMD_BASIC = f"{_Y}-{_M}-{_D}", f"{_Y}{_M}{_D}"
_OFFSET = r"(?:[Zz]|[+-](?:[01]\d|2[0-3])(?::?[0-5]\d)?(?!\d))"  # an offset never runs on into more digits
_FRACTION = r"(?:[.,]\d{1,9}(?!\d))"
# Minutes and seconds never run on into more digits: "7:33775899" is a number after "7:", not 7:33 and 775899.
_HMS = rf"(?:[01]?\d|2[0-4]):[0-5]\d(?!\d)(?::[0-5]\d(?!\d){_FRACTION}?)?{_OFFSET}?"
_HMS_BASIC = rf"(?:[01]\d|2[0-4])(?:[0-5]\d(?:[0-5]\d{_FRACTION}?)?)?{_OFFSET}?(?!\d)"
ISO_8601 = rf"(?<!\d)(?:{_YMD}(?!\d)(?:[Tt ]{_HMS})?|{_YMD_BASIC}[Tt]{_HMS_BASIC}|{_HMS})"
# Anything that looks like a phone number: 8 or more digits, maybe with +, spaces, dots, dashes or brackets between
# ("(03) 1234 5678" loses its bracket too); it never runs on into a date or a time written after it.
_NOT_A_DATE = rf"(?!(?<!\d)(?:{_YMD}(?!\d)|\d\d?:\d\d))"
PHONE = re.compile(rf"(?:\+|\((?=\d{{1,5}}\)[\s.\-]*\d))?\d(?:[\s().\-]*{_NOT_A_DATE}\d){{7,}}")
# One pass: at each place a date or time is kept whole before a number is looked for.
_DATE_OR_PHONE = re.compile(rf"(?P<iso>{ISO_8601})|{PHONE.pattern}")
REMOVED = "[number removed]"
HEX_KEYS = frozenset({"call", "hash", "previous", "timestamp"})  # hashes and times: digit runs, never numbers


def scrub(value: Any) -> Any:
    """A log value with anything shaped like a phone number removed; ISO-8601 dates, times and instants kept."""
    if isinstance(value, str):  # under 8 characters a string cannot hold a number's 8 digits: most values
        return value if len(value) < 8 else _DATE_OR_PHONE.sub(lambda m: m["iso"] or REMOVED, value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) >= 10_000_000:
        return REMOVED
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def drop_phone_numbers(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Remove anything shaped like a phone number from every log event, as a second line of defence: the
    service never logs a caller's number in the first place."""
    for k, v in event.items():
        if k not in HEX_KEYS:
            event[k] = scrub(v)
    return event


def console_renderer() -> structlog.dev.ConsoleRenderer:
    """The terminal's renderer. Its default traceback (rich or better-exceptions) shows every frame's local
    variables, a caller's number among them, after the scrubber has run: tracebacks here are plain, without
    locals, and reach it already formatted as text by format_exc_info and scrubbed."""
    return structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)


def _orjson_text(event: Any, **kw: Any) -> str:
    """orjson's JSON as text (UTF-8 kept, like ensure_ascii=False): the line's serialisation in a few microseconds."""
    return orjson.dumps(event, **kw).decode()


def json_renderer() -> structlog.processors.JSONRenderer:
    """One JSON object per line, serialised by orjson (structlog's `serializer`; its fallback for other types kept)."""
    return structlog.processors.JSONRenderer(serializer=_orjson_text)


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Set up structlog for this process: JSON off a terminal, phone numbers scrubbed, one write per line."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = json_renderer() if as_json else console_renderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,  # tracebacks as plain text (no local variables), then scrubbed
            drop_phone_numbers,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        # One write per line (the line and its newline together): workers sharing stderr never merge lines.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def keep_loggers() -> None:
    """For a server process whose logging is set up for good: each module's logger is bound at its first line and
    kept, not bound again at every line (structlog's cache_logger_on_first_use; off otherwise, since tests set
    structlog up again and again)."""
    structlog.configure(cache_logger_on_first_use=True)


def configure_worker(settings: Settings) -> None:
    """The RQ worker's logging (`rq worker -c ivr.worker`): structlog as `configure` sets it up, and the stdlib
    logging RQ writes through (a failed job's exception text among it) rendered by structlog after the same
    phone-number scrubber, tracebacks as scrubbed text in either format. Call it before the worker starts: RQ adds
    its own unscrubbed handlers only where no handler is found."""
    configure(settings.log_level, settings.log_format)
    as_json = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(LEVELS[settings.log_level])
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                           structlog.stdlib.add_logger_name, structlog.processors.format_exc_info,
                           drop_phone_numbers, structlog.processors.TimeStamper(fmt="iso", utc=True)],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    json_renderer() if as_json
                    else console_renderer()]))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[settings.log_level])
    for name in ("rq.worker", "rq.job"):  # RQ's handlers from an earlier worker in this process, if any
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    logging.getLogger("twilio").setLevel(logging.WARNING)  # not every request's URL and headers at info


def call_hash(key: bytes, call_sid: str | None) -> str:
    """A keyed, one-way name for a call, so its log lines can be joined without naming the caller."""
    if not call_sid:
        return "-"
    return hmac.new(key, call_sid.encode(), hashlib.sha256).hexdigest()[:16]


def init_app(app: Flask) -> None:
    """Configure structlog for the process, once: a second app in the same process shares the first's setup."""
    if not structlog.is_configured():
        settings: Settings = app.extensions["ivr.settings"]
        configure(settings.log_level, settings.log_format)
