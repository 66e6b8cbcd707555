"""structlog, configured once: JSON when not on a terminal, one canonical line per webhook."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from flask import Flask

from ivr.settings import Settings

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Anything that looks like a phone number: 8 or more digits, maybe with +, spaces, dots, dashes or brackets between.
PHONE = re.compile(r"\+?\d(?:[\s().\-]*\d){7,}")
REMOVED = "[number removed]"
HEX_KEYS = frozenset({"call", "hash", "previous", "timestamp"})  # hashes and times: digit runs, never numbers


def scrub(value: Any) -> Any:
    """A log value with anything shaped like a phone number removed."""
    if isinstance(value, str):
        return PHONE.sub(REMOVED, value)
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


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Set up structlog for this process: JSON off a terminal, phone numbers scrubbed, one write per line."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            *([structlog.processors.format_exc_info] if as_json else []),  # tracebacks as text, then scrubbed
            drop_phone_numbers,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        # One write per line (the line and its newline together): workers sharing stderr never merge lines.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


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
