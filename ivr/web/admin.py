"""Operators' endpoints: /healthz (alive), /readyz (config, store, clock) and /admin/reload behind IVR_ADMIN_TOKEN."""

from __future__ import annotations

import hmac
import os
import signal

import structlog
from flask import Blueprint, Response, abort, jsonify, request

from ivr.web.helpers import ext

log = structlog.get_logger("ivr.admin")
bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
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
    """What this worker serves: the config files and their hash, the store and whether it is degraded, the clock."""
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
