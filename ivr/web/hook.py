"""The signed webhook request being served, whichever way it came in: straight off WSGI (ivr.web.front, the
caller's webhooks) or through Flask (ivr.web.guard: the counsellors' line, and any /voice/ request the front hands
on). Views read the request's parameters, the call, the instant and the app's clients from it, never from Flask's
request globals, so one view serves both ways.

It lives in a context variable: each gevent greenlet (each connection) sees its own, and it is cleared when the
request ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import structlog

from ivr.logs import call_hash
from ivr.state.store import valid_call_sid

UrlBuilder = Callable[..., str]  # url(endpoint, **query): the path of one of the app's endpoints


class Hook:
    """One verified webhook request: its parameters (query and form; the query wins, as in Flask's
    request.values), the app's extensions, how to build the app's paths, and what the request found out."""

    __slots__ = ("ahead", "base", "call", "endpoint", "extensions", "instant", "live", "sid", "step", "t0", "url",
                 "values")

    def __init__(self, extensions: dict[str, Any], values: Mapping[str, str], url: UrlBuilder, endpoint: str,
                 t0: float, base: str):
        self.extensions = extensions
        self.values = values
        self.url = url
        self.base = base  # where Twilio reaches this service (ivr.web.helpers.base_url)
        self.endpoint = endpoint  # the Flask endpoint name, e.g. voice.menu
        self.t0 = t0  # perf_counter() when the request came in
        self.sid: str | None = valid_call_sid(values.get("CallSid"))
        self.call = call_hash(extensions["ivr.settings"].hash_key, self.sid)  # once per request: logs, places
        self.instant: dt.datetime = extensions["ivr.clock"].now()
        self.step: Any = None  # the Step answered (ivr.web.helpers.answer), for the log line
        self.live: Any = None  # the live facts, read once on first use (ivr.web.live)
        self.ahead: dict[str, Any] = {}  # what a step read from the store ahead of its use (ivr.web.live.read_ahead)


_current: ContextVar[Hook | None] = ContextVar("ivr_webhook", default=None)


def hook() -> Hook:
    """The webhook request being served; RuntimeError outside one."""
    found = _current.get()
    if found is None:
        raise RuntimeError("no verified webhook request is being served")
    return found


def serving() -> Hook | None:
    """The webhook request being served, or None (not a webhook, or not verified yet)."""
    return _current.get()


def begin(made: Hook) -> Hook:
    """Serve `made` from now on: its Redis writes batched together, and its call's hash on every log line."""
    _current.set(made)
    made.extensions["ivr.store"].begin()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(call=made.call)
    return made


def end() -> None:
    """No webhook request is being served any more (on this greenlet)."""
    _current.set(None)
    structlog.contextvars.clear_contextvars()
