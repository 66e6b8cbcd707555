"""In front of every /voice/ and /counselor/ request: Twilio's signature, the canonical log line, and the safe answer
when a step fails. Flask runs them as its request hooks and error handler; ivr.web.front, which serves the caller's
signed webhooks without Flask, runs the same functions (signed_by_twilio, finish, failed).

The signature is checked with twilio's RequestValidator through its public methods only: the URL as it was requested
is signed once with `compute_signature` and compared in constant time; only when that differs does `validate` try the
URL with and without its port, as Twilio's own check does. A genuine request costs one HMAC, a forged one three.

Before any of that, a request whose body is over MAX_BODY (64 kB; Twilio's webhooks are a few kB) or has more than
MAX_FIELDS form fields is refused with 413 and its connection closed: a declared Content-Length over the limit is
refused before a byte of the body is read, a chunked body is cut at the limit (werkzeug's MAX_CONTENT_LENGTH), and
fields are counted before the form is parsed (MAX_FORM_PARTS covers multipart bodies only).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Mapping
from urllib.parse import urlparse

import structlog
from flask import Response, current_app, g, request, url_for
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from common.facts import HOME
from ivr.call.step import Step
from ivr.metrics import ENDPOINTS
from ivr.web.helpers import answer, base_url, ext, twiml
from ivr.web.hook import Hook, begin, end, serving

log = structlog.get_logger("ivr.webhook")
PROTECTED = ("/voice/", "/counselor/")
MAX_BODY = 64 * 1024  # bytes of request body at most (Flask's MAX_CONTENT_LENGTH)
MAX_FIELDS = 200  # form fields at most (Flask's MAX_FORM_PARTS for multipart; counted here for url-encoded forms)


def public_url(base: str, path: str, query: str) -> str:
    """The URL Twilio signed: the public base, the path and the query string."""
    return f"{base}{path}?{query}" if query else f"{base}{path}"


def signed_by_twilio(validator: RequestValidator, url: str, form: Mapping[str, str], signature: str) -> bool:
    """True when `signature` is Twilio's for this URL and form: the same answer as `validator.validate`, with one
    HMAC for a genuine request instead of two. The URL is first normalised as `validate` normalises it (urlparse
    drops tabs, newlines and an empty fragment), so the first try is always one of the two forms it signs."""
    as_requested = urlparse(url).geturl()
    if hmac.compare_digest(validator.compute_signature(as_requested, form).encode(), signature.encode()):
        return True
    return bool(validator.validate(url, form, signature))


def forbidden(reason: str) -> Response:
    """403 for a request Twilio did not sign; counted and logged by reason, never with TwiML or config."""
    ext("metrics").rejected.labels(reason).inc()
    log.warning("webhook_rejected", reason=reason, path=request.path)
    return Response("Forbidden: this endpoint only answers requests signed by Twilio.\n", 403, mimetype="text/plain")


def too_large() -> Response:
    """413 for a body over the limits, on a connection then closed (the rest of the body is never read); counted
    and logged like a forged request on the webhooks."""
    if request.path.startswith(PROTECTED):
        ext("metrics").rejected.labels("too_large").inc()
        log.warning("webhook_rejected", reason="too_large", path=request.path)
    response = Response("Request Entity Too Large\n", 413, mimetype="text/plain")
    response.headers["Connection"] = "close"
    return response


def over_limits() -> bool:
    """True when the body reached MAX_BODY (a chunked one, cut there: werkzeug stops reading at the limit without
    saying so) or a url-encoded form holds more than MAX_FIELDS fields. The body is read here, at most MAX_BODY of
    it, and the form is then parsed from these bytes."""
    data = request.get_data(cache=True)
    if request.content_length is None and len(data) >= MAX_BODY:
        return True
    return request.mimetype == "application/x-www-form-urlencoded" and too_many_fields(data)


def too_many_fields(body: bytes) -> bool:
    """A url-encoded form of more than MAX_FIELDS fields, counted before it is parsed."""
    return body.count(b"&") >= MAX_FIELDS


def before() -> Response | None:
    """Refuse a body over the limits before reading it, check the signature before anything is parsed, then serve
    the request as a verified webhook (ivr.web.hook)."""
    t0 = time.perf_counter()
    limit = request.max_content_length
    if limit is not None and (request.content_length or 0) > limit:  # not a byte of the body read
        return too_large()
    if not request.path.startswith(PROTECTED):
        return None
    structlog.contextvars.clear_contextvars()
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:  # refused before any of the body is read
        return forbidden("unsigned")
    base = base_url(ext("settings"), request.scheme, request.host, request.root_path)
    try:
        if over_limits():
            return too_large()
        signed = signed_by_twilio(ext("validator"), public_url(base, request.path, request.query_string.decode(
            "latin-1")), request.form, signature)
    except RequestEntityTooLarge:  # too many multipart fields
        return too_large()
    except HTTPException:  # a body too large or malformed to read cannot carry a valid signature
        signed = False
    if not signed:
        return forbidden("forged")
    g.verified = True
    begin(Hook(current_app.extensions, request.values, url_for, request.endpoint or "unknown", t0, base))
    return None


def finish(served: Hook, status: int) -> None:
    """A verified webhook answered: send its writes, observe its latency and write the one canonical log line."""
    served.extensions["ivr.store"].flush()
    endpoint = served.endpoint.removeprefix("voice.")
    elapsed = time.perf_counter() - served.t0
    latency = served.extensions["ivr.metrics"].latency_of.get(endpoint)
    if latency is not None:
        latency.observe(elapsed)
    step: Step | None = served.step
    log.info("webhook", step=endpoint, option=step.option if step else None, lang=step.lang if step else None,
             decision=step.decision if step else None, status=status, latency_ms=round(elapsed * 1000, 2),
             worker=os.getpid())


def after(response: Response) -> Response:
    """A verified webhook's writes, latency and log line (finish)."""
    served = serving()  # set only once the signature was checked: a 403 or 413 never has one
    if served is not None:
        finish(served, response.status_code)
    return response


def teardown(_: BaseException | None = None) -> None:
    """Whatever happened, no webhook is served by this greenlet any more."""
    end()


def on_error(err: Exception) -> Response | HTTPException:
    """A /voice/ request never gets a 5xx or an error page: the caller goes to the general line instead."""
    if not request.path.startswith(PROTECTED):
        if isinstance(err, HTTPException):
            return err
        log.exception("request_failed", path=request.path)
        return Response("internal error\n", 500, mimetype="text/plain")
    if not g.get("verified"):  # never answer an unverified request with TwiML or anything from the config
        return forbidden("forged")
    return failed(err, request.endpoint or "unknown", request.path)


def failed(err: Exception, endpoint: str, path: str) -> Response:
    """The safe answer to a verified webhook whose step failed: the general line (a waitUrl keeps its caller in
    line; a counsellor is told and the line ends)."""
    endpoint = endpoint.removeprefix("voice.")
    if path.startswith("/counselor/"):  # a counsellor is told and the line ends; no caller is on it
        log.exception("counsellor_step_failed", path=path)
        boot = ext("flows").boot()
        r = VoiceResponse()
        boot.speak(r, [boot.menu.line(HOME, "counsellor_bye")])
        r.hangup()
        return twiml(str(r))
    if isinstance(err, HTTPException):
        log.warning("webhook_unroutable", path=path, status=err.code)
    else:
        log.exception("webhook_failed", step=endpoint)
        ext("metrics").errors.labels(endpoint if endpoint in ENDPOINTS else "fallback").inc()
    boot = ext("flows").boot()
    if endpoint == "wait":  # a waitUrl may only play, pause or leave: keep the caller in line
        return twiml(boot.wait_safe())
    try:
        served = serving()
        return answer(boot.fallback(served.instant if served else ext("clock").now()))
    except Exception:
        log.exception("fallback_failed")
        return twiml(boot.last_resort())
