"""What every webhook blueprint shares: the app's clients, request parameters read defensively, and the answer.

The voice and counsellors' blueprints both import from here, never from each other.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from flask import Response, current_app, request
from werkzeug.sansio.utils import get_current_url

from ivr.call.flow import Flow
from ivr.call.lane import Lane
from ivr.call.step import Heard, Step
from ivr.web.hook import hook, serving

MAX_STEP = 20  # the deepest chain step an action URL may name


def ext(name: str) -> Any:
    """A client of the app (`ivr.<name>` in app.extensions): settings, store, metrics, config, flows, clock."""
    served = serving()
    return (served.extensions if served is not None else current_app.extensions)[f"ivr.{name}"]


def flow() -> Flow:
    """The call flow of the config serving now."""
    return ext("flows").current()


def twiml(body: str) -> Response:
    """A TwiML document as Twilio wants it: text/xml."""
    return Response(body, mimetype="text/xml")


def param(name: str, limit: int = 64) -> str:
    """A request parameter, stripped and cut to `limit` characters; '' when absent."""
    return (hook().values.get(name) or "").strip()[:limit]


def digits() -> str:
    """The one key pressed: '' for none, '?' for anything that is not a single key."""
    value = param("Digits", 16)
    if not value:
        return ""
    return value if len(value) == 1 and value in "0123456789*#" else "?"


def heard() -> Heard | None:
    """What the caller said, when they spoke instead of pressing a key; it is matched, never logged or stored."""
    text = param("SpeechResult", 200)
    if not text:
        return None
    try:
        confidence = float(param("Confidence", 16))
    except ValueError:
        confidence = 0.0
    return Heard(text, min(max(confidence, 0.0), 1.0) if math.isfinite(confidence) else 0.0)


def small_int(name: str, default: int, high: int) -> int:
    """A whole-number parameter clamped to 0..high; `default` when it is not a number."""
    try:
        return min(max(int(param(name, 8)), 0), high)
    except ValueError:
        return default


def option_param() -> str:
    """The option an action URL names (`o`); the general line when it names none that exists."""
    value = param("o")
    return value if flow().menu.option(value) else flow().general


def lang_param() -> str:
    """The caller's language an action URL names (`l`); Japanese when it names none that exists."""
    return flow().menu.known_language(param("l"))


def lane() -> Lane:
    """Where the caller is on their way, as the signed action URL names it: option, language, chain step, the
    urgent lane (`u`), whose wording they hear (`w`) and the partner a shared shift gave them (`f`); anything unknown
    is read as the general line's."""
    wording = param("w")
    return Lane(option_param(), lang_param(), small_int("s", 0, MAX_STEP), urgent=param("u", 1) == "1",
                wording=wording if wording and flow().menu.option(wording) else None, first=param("f") or None)


@functools.lru_cache(maxsize=64)
def root_url(scheme: str, host: str, root_path: str) -> str:
    """request.root_url without its last slash, worked out once per scheme, host and prefix, not per request."""
    return get_current_url(scheme, host, root_path).rstrip("/")


def base_url(settings: Any, scheme: str, host: str, root_path: str) -> str:
    """Where Twilio reaches this service: IVR_PUBLIC_URL when set, else a request's root as ProxyFix corrected it."""
    return str(settings.public_url or root_url(scheme, host, root_path))


def public_base() -> str:
    """Where Twilio reached this service for the webhook being served, or for this Flask request (base_url)."""
    served = serving()
    if served is not None:
        return served.base
    return base_url(ext("settings"), request.scheme, request.host, request.root_path)


def action_url(endpoint: str, **query: Any) -> str:
    """The path of one of the app's endpoints with `query`, for the webhook being served."""
    return hook().url(endpoint, **query)


def answer(step: Step) -> Response:
    """Send a step's TwiML, count it, and enrich the call's record (best effort)."""
    served = serving()
    if served is not None:
        served.step = step
    metrics = ext("metrics")
    if step.outcome:
        metrics.routes.labels(step.outcome).inc()
    if step.bad_input:
        metrics.bad_input.labels(step.bad_input).inc()
    if step.crisis:
        metrics.crisis.labels(step.option or "", step.lang or "").inc()
    if step.record is not None:
        fields = dict(step.record)
        if step.lang:
            fields.setdefault("lang", step.lang)
        ext("store").record(served.sid if served else None, **fields)
    return twiml(step.xml)
