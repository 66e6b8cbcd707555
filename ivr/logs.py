"""structlog, configured once: JSON when not on a terminal, one canonical line per webhook."""

from __future__ import annotations

import hashlib
import hmac
import logging
import sys

import structlog
from flask import Flask

from ivr.settings import Settings

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def configure(level: str = "info", fmt: str = "auto") -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([structlog.processors.format_exc_info] if as_json else []),  # the console renderer does its own
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
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
