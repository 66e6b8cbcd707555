"""The webhooks Twilio calls, plus health, readiness and the signature check in front of every /voice/ path."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import math
import os
import signal
import time
from typing import Any

import structlog
from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request, url_for
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.exceptions import HTTPException
from werkzeug.sansio.utils import get_current_url

from ivr.flow import Flow, Heard, Step
from ivr.jobs import fold_call, fold_outcome, wait_bucket
from ivr.logs import call_hash
from ivr.metrics import ENDPOINTS
from ivr.render import render
from ivr.signature import Validator
from ivr.state import valid_call_sid
from routing import JST

log = structlog.get_logger("ivr.webhook")
bp = Blueprint("voice", __name__, url_prefix="/voice")
PROTECTED = ("/voice/", "/counselor/")
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
MAX_STEP = 20


def ext(name: str) -> Any:
    return current_app.extensions[f"ivr.{name}"]


def flow() -> Flow:
    return ext("config").current.flow


def twiml(body: str) -> Response:
    return Response(body, mimetype="text/xml")


# -- request parameters, each read defensively ----------------------------------------------------------------
def param(name: str, limit: int = 64) -> str:
    return (request.values.get(name) or "").strip()[:limit]


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
    try:
        return min(max(int(param(name, 8)), 0), high)
    except ValueError:
        return default


def option_param() -> str:
    value = param("o")
    return value if flow().menu.option(value) else flow().general


def lang_param() -> str:
    return flow().menu.known_language(param("l"))


# -- the signature check and the canonical log line -----------------------------------------------------------
@functools.lru_cache(maxsize=64)
def root_url(scheme: str, host: str, root_path: str) -> str:
    """request.root_url without its last slash, worked out once per scheme, host and prefix, not per request."""
    return get_current_url(scheme, host, root_path).rstrip("/")


def public_base() -> str:
    """Where Twilio reaches this service: IVR_PUBLIC_URL when set, else this request's root as ProxyFix corrected it."""
    return str(ext("settings").public_url or root_url(request.scheme, request.host, request.root_path))


def public_url() -> str:
    """The URL Twilio signed."""
    qs = request.query_string.decode("latin-1")
    return f"{public_base()}{request.path}" + (f"?{qs}" if qs else "")


def forbidden(reason: str) -> Response:
    ext("metrics").rejected.labels(reason).inc()
    log.warning("webhook_rejected", reason=reason, path=request.path)
    return Response("Forbidden: this endpoint only answers requests signed by Twilio.\n", 403, mimetype="text/plain")


def before() -> Response | None:
    g.t0 = time.perf_counter()
    if not request.path.startswith(PROTECTED):
        return None
    structlog.contextvars.clear_contextvars()
    g.sid = None
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:  # refused before any of the body is read
        return forbidden("unsigned")
    try:
        signed = ext("validator").validate(public_url(), request.form, signature)
    except HTTPException:  # a body too large or malformed to read cannot carry a valid signature
        signed = False
    if not signed:
        return forbidden("forged")
    g.verified = True
    ext("store").begin()  # this request's writes go to Redis together
    g.sid = valid_call_sid(request.values.get("CallSid"))
    g.call = call_hash(ext("settings").hash_key, g.sid)  # once per request: logs, places, counts
    structlog.contextvars.bind_contextvars(call=g.call)
    g.instant = ext("clock").now()
    return None


def after(response: Response) -> Response:
    step: Step | None = g.get("step")
    if request.path.startswith(PROTECTED) and response.status_code != 403:
        ext("store").flush()
        endpoint = (request.endpoint or "unknown").removeprefix("voice.")
        elapsed = time.perf_counter() - g.t0
        metrics = ext("metrics")
        if endpoint in ENDPOINTS:
            metrics.latency.labels(endpoint).observe(elapsed)
        log.info("webhook", step=endpoint, option=step.option if step else None, lang=step.lang if step else None,
                 decision=step.decision if step else None, status=response.status_code,
                 latency_ms=round(elapsed * 1000, 2), worker=os.getpid())
        structlog.contextvars.clear_contextvars()
    return response


def answer(step: Step) -> Response:
    """Send a step's TwiML, count it, and enrich the call's record (best effort)."""
    g.step = step
    metrics = ext("metrics")
    if step.outcome:
        metrics.routes.labels(step.outcome).inc()
    if step.bad_input:
        metrics.bad_input.labels(step.bad_input).inc()
    if step.record is not None:
        fields = dict(step.record)
        if step.lang:
            fields.setdefault("lang", step.lang)
        ext("store").record(g.sid, **fields)
    return twiml(render(step.twiml))


# -- the webhooks ---------------------------------------------------------------------------------------------
@bp.route("/incoming", methods=["POST", "GET"])
def incoming() -> Response:
    step = flow().incoming(g.instant)
    entry = ext("settings").entries.get(param("To"), "other")
    ext("metrics").calls.labels(step.record["window"] if step.record else "open", entry).inc()
    ext("store").count_caller(g.instant.astimezone(JST).date().isoformat(), param("From", 64))
    step.record = {**(step.record or {}), "started": g.instant.isoformat()}
    return answer(step)


@bp.route("/menu", methods=["POST", "GET"])
def menu() -> Response:
    step = flow().menu_choice(g.instant, digits(), small_int("n", 1, 9) or 1, heard())
    if step.record and "option" in step.record:
        ext("metrics").selections.labels(step.record["option"]).inc()
    return answer(step)


@bp.route("/language", methods=["POST", "GET"])
def language() -> Response:
    return answer(flow().language_choice(g.instant, digits(), small_int("n", 1, 9) or 1, heard()))


@bp.route("/referrals", methods=["POST", "GET"])
def referrals() -> Response:
    return answer(flow().referrals(g.instant, digits(), option_param(), lang_param(), small_int("s", 0, MAX_STEP),
                                   small_int("n", 1, 9) or 1))


@bp.route("/wait", methods=["POST", "GET"])
def wait() -> Response:
    return answer(flow().wait(option_param(), lang_param(), param("p"), small_int("QueueTime", 0, 86400),
                              small_int("QueuePosition", 0, 9999), small_int("AvgQueueTime", 0, 86400)))


def give_back() -> None:
    """This call no longer holds a place at any partner (it was answered, left the queue, or ended)."""
    if g.sid:
        capped = [p.id for p in flow().routing.partners.values() if p.capacity is not None]
        ext("store").give_back(g.call, capped)


def partner_of() -> str:
    """The partner this queue or dial outcome is about, as named in the signed action URL."""
    pid = param("p")
    return pid if pid in flow().routing.partners else ""


def started_hour(started: str | None) -> str:
    """The JST hour a call came in ('00'-'23'), from its record; this hour when the record is gone."""
    try:
        when = dt.datetime.fromisoformat(started) if started else g.instant
    except ValueError:
        when = g.instant
    return f"{when.astimezone(JST).hour:02d}"


def fold(kind: str, result: str, waited: int | None = None) -> None:
    """Queue an idempotent count of this outcome (campaign, day, partner, result, wait bucket; no caller data)."""
    if not g.sid:
        return
    store = ext("store")
    rec = store.call(g.sid)
    store.enqueue(fold_outcome, {
        "call": g.call, "step": str(small_int("s", 0, MAX_STEP)), "kind": kind,
        "campaign": rec.get("campaign", ""), "day": g.instant.astimezone(JST).date().isoformat(),
        "partner": rec.get("partner", ""), "result": result if result.replace("-", "").isalpha() else "unknown",
        "wait_bucket": wait_bucket(waited) if waited is not None else "",
    }, later=True)


@bp.route("/queue-done", methods=["POST", "GET"])
def queue_done() -> Response:
    give_back()
    ext("store").left(param("q"), g.sid)
    result = param("QueueResult").lower()
    waited = small_int("QueueTime", 0, 86400)
    fold("queue", result, waited)
    ext("store").record(g.sid, waited=waited)
    ext("metrics").queue_left(partner_of(), result, waited)
    step = flow().queue_done(g.instant, result, option_param(), lang_param(), small_int("s", 0, MAX_STEP))
    return answer(step)


@bp.route("/dial-done", methods=["POST", "GET"])
def dial_done() -> Response:
    give_back()
    status = param("DialCallStatus").lower()
    fold("dial", status)
    ext("metrics").dial_ended(partner_of(), status)
    return answer(flow().dial_done(g.instant, status, option_param(), lang_param(), small_int("s", 0, MAX_STEP)))


@bp.route("/status", methods=["POST", "GET"])
def status() -> Response:
    call_status = param("CallStatus").lower()
    store = ext("store")
    if call_status in FINAL_STATUSES and g.sid:
        give_back()
        rec = store.call(g.sid)
        store.left(rec.get("queue", ""), g.sid)
        store.enqueue(fold_call, {
            "call": g.call,
            "campaign": rec.get("campaign", ""),
            "day": g.instant.astimezone(JST).date().isoformat(),
            "option": rec.get("option", ""),
            "outcome": rec.get("result") or rec.get("route") or rec.get("window") or "unknown",
            "hour": started_hour(rec.get("started")),
            "overflowed": "1" if rec.get("step", "0") not in ("", "0") else "0",
            "waited": rec.get("waited", ""),
        }, later=True)
    g.step = Step(twiml=VoiceResponse(), decision=f"status:{call_status or 'unknown'}")
    return Response(status=204)


@bp.route("/fallback", methods=["POST", "GET"])
def fallback() -> Response:
    return answer(ext("config").boot.flow.fallback(g.instant))


# -- health and errors ----------------------------------------------------------------------------------------
def healthz() -> Response:
    return jsonify(status="alive")


def readyz() -> Response:
    store, cfg = ext("store"), ext("config")
    reachable = store.ping()
    return jsonify(
        status="ready",
        config={"menu": cfg.current.menu.source, "routing": cfg.current.routing.source, "hash": cfg.current.digest},
        worker=os.getpid(),
        store=store.kind,
        degraded=not reachable,
        clock=ext("clock").describe(),
    )


def on_error(err: Exception) -> Response | HTTPException:
    """A /voice/ request never gets a 5xx or an error page: the caller goes to the general line instead."""
    if not request.path.startswith(PROTECTED):
        if isinstance(err, HTTPException):
            return err
        log.exception("request_failed", path=request.path)
        return Response("internal error\n", 500, mimetype="text/plain")
    if not g.get("verified"):  # never answer an unverified request with TwiML or anything from the config
        return forbidden("forged")
    endpoint = (request.endpoint or "unknown").removeprefix("voice.")
    if request.path.startswith("/counselor/"):  # a counsellor is told and the line ends; no caller is on it
        log.exception("counsellor_step_failed", path=request.path)
        r = VoiceResponse()
        boot = ext("config").boot.flow
        boot.speak(r, [boot.menu.line("ja", "counsellor_bye")])
        r.hangup()
        return twiml(str(r))
    if isinstance(err, HTTPException):
        log.warning("webhook_unroutable", path=request.path, status=err.code)
    else:
        log.exception("webhook_failed", step=endpoint)
        ext("metrics").errors.labels(endpoint if endpoint in ENDPOINTS else "fallback").inc()
    boot = ext("config").boot.flow
    if endpoint == "wait":  # a waitUrl may only play, pause or leave: keep the caller in line
        return twiml(boot.wait_safe())
    try:
        instant = g.get("instant") or ext("clock").now()
        return answer(boot.fallback(instant))
    except Exception:
        log.exception("fallback_failed")
        return twiml(boot.last_resort())


admin = Blueprint("admin", __name__, url_prefix="/admin")


@admin.before_request
def admin_only() -> Response | None:
    """Admin endpoints exist only with IVR_ADMIN_TOKEN set, and answer only a bearer of it (constant-time check)."""
    token = ext("settings").admin_token
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        log.warning("admin_refused", path=request.path)
        return Response("Forbidden\n", 403, mimetype="text/plain")
    return None


@admin.post("/reload")
def reload_config() -> tuple[Response, int]:
    """Re-read and validate the config here; when it changed, SIGHUP gunicorn so every worker takes it."""
    result, loaded, details = ext("config").reload()
    master = os.environ.get("IVR_GUNICORN_MASTER")
    if result == "applied" and master:
        os.kill(int(master), signal.SIGHUP)
    body = {"result": result, "hash": loaded.digest,
            ("problems" if result == "rejected" else "changes"): details}
    return jsonify(body), 422 if result == "rejected" else 200


def init_app(app: Flask) -> None:
    app.extensions["ivr.validator"] = Validator(app.extensions["ivr.settings"].auth_token)
    app.before_request(before)
    app.after_request(after)
    app.register_blueprint(bp)
    app.register_blueprint(admin)
    from ivr import audio, counselor

    app.register_blueprint(counselor.bp)
    audio.init_app(app)
    app.add_url_rule("/healthz", "healthz", healthz)
    app.add_url_rule("/readyz", "readyz", readyz)
    app.register_error_handler(Exception, on_error)


__all__ = ["init_app", "url_for"]
