"""Operators' endpoints: /healthz (alive), /readyz (ready or not, and why) and /admin/reload behind IVR_ADMIN_TOKEN.

The admin token is presented as RFC 6750 section 2.1 says: `Authorization: Bearer <token>`, the scheme in any case,
one b64token after it. Anything else is refused with 401 and a `WWW-Authenticate: Bearer` challenge. /readyz tells
anyone only booleans and a reason code; the details (config files and hash, worker, store, clock) go to the token.
"""

from __future__ import annotations

import hmac
import os
import re
import signal
from typing import Literal

import structlog
from flask import Blueprint, Response, abort, jsonify, request

from ivr.web.helpers import ext

log = structlog.get_logger("ivr.admin")
bp = Blueprint("admin", __name__, url_prefix="/admin")
# credentials = "Bearer" 1*SP b64token; b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
BEARER = re.compile(r"(?i:bearer) +([A-Za-z0-9\-._~+/]+=*)")
REALM = 'Bearer realm="ivr-admin"'
Presented = Literal["token", "none", "wrong"]


def bearer_token(header: str) -> str | None:
    """The token of an Authorization header in RFC 6750 form (`Bearer <b64token>`, the scheme in any case); None
    for no header, another scheme, no token, or anything after it."""
    found = BEARER.fullmatch(header.strip(" \t"))  # optional whitespace around a field value is not part of it
    return found[1] if found else None


def presented(token: str) -> Presented:
    """What this request presents against the admin token: "token" (it, compared in constant time), "none" (no
    bearer token in RFC 6750 form) or "wrong" (a well-formed bearer token that is not it)."""
    given = bearer_token(request.headers.get("Authorization", ""))
    if given is None:
        return "none"
    return "token" if hmac.compare_digest(given.encode(), token.encode()) else "wrong"


def unauthorized(what: Presented) -> Response:
    """401 with the Bearer challenge (RFC 6750 section 3): `invalid_token` for a wrong token, no error code when
    none was presented in the Bearer form."""
    resp = Response("Unauthorized: send Authorization: Bearer <IVR_ADMIN_TOKEN>\n", 401, mimetype="text/plain")
    resp.headers["WWW-Authenticate"] = REALM + (', error="invalid_token"' if what == "wrong" else "")
    return resp


@bp.before_request
def admin_only() -> Response | None:
    """Admin endpoints exist only with IVR_ADMIN_TOKEN set, and answer only a bearer of it (constant-time check)."""
    token = ext("settings").admin_token
    if not token:
        abort(404)
    what = presented(token)
    if what != "token":
        log.warning("admin_refused", path=request.path, presented=what)
        return unauthorized(what)
    return None


@bp.post("/reload")
def reload_config() -> tuple[Response, int]:
    """Re-read and validate the config here; when it changed, SIGHUP gunicorn so every worker takes it."""
    result, loaded, details = ext("config").reload()
    master = ext("settings").gunicorn_master
    if result == "applied" and master:
        os.kill(master, signal.SIGHUP)
    body = {"result": result, "hash": loaded.digest,
            ("problems" if result == "rejected" else "changes"): details}
    return jsonify(body), 422 if result == "rejected" else 200


def healthz() -> Response:
    """The process is alive (for a load balancer)."""
    return jsonify(status="alive")


def readyz() -> Response:
    """Whether this worker serves callers, as booleans and one reason code for anyone (a probe, a load balancer).

    Always 200 from a worker that answers: it boots only on a validated config, and while the store is unreachable
    callers are still routed (only records and counts are lost) and every instance shares that store, so none should
    be taken out (reason `store_unreachable`). With the admin token, `details` names the config files and hash, the
    worker, the store and the clock."""
    store, cfg, clock = ext("store"), ext("config"), ext("clock")
    reachable = store.ping()
    reason = "store_unreachable" if not reachable else "clock_simulated" if clock.simulated else "ok"
    body: dict[str, object] = {"ready": True, "config": True, "store": reachable, "clock": not clock.simulated,
                               "reason": reason}
    token = ext("settings").admin_token
    if token and "Authorization" in request.headers:
        what = presented(token)
        if what == "token":
            body["details"] = {
                "config": {"menu": cfg.current.menu.source, "routing": cfg.current.routing.source,
                           "hash": cfg.current.digest},
                "worker": os.getpid(), "store": {"kind": store.kind, "degraded": not reachable},
                "clock": clock.describe()}
        else:  # readiness never depends on the token: the probe's answer stands, without the details
            log.warning("admin_refused", path=request.path, presented=what)
    return jsonify(body)
