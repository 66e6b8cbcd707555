"""The operators' live controls over HTTP, behind the admin token (the admin blueprint's bearer check):

- `POST /admin/ops/pause` (and resume, close, open, announce, announce-clear) with JSON `{"target": ..., "by": ...,
  "why": ..., "for": "30m", "until": ...}`;
- `POST /admin/ops/reload` `{"by": ..., "why": ...}`: every instance reloads (answers come back by id);
  `GET /admin/ops/reload?id=<id>` (default: the latest): which processes applied which config hash, which refused;
- `GET /admin/ops/status`: the controls in force, the live figures per partner and the latest audit entries.

Every change names who made it (`by`, required) and goes to the audit log. The store must be writable: 503 if not.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import redis
from flask import Response, jsonify, request

from ivr.state.operate import ACTIONS, OpsRefused, apply, status
from ivr.web.admin import bp
from ivr.web.helpers import ext

RELOAD_ID = re.compile(r"^[0-9a-f]{12}$")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        return data
    return {k: v for k, v in request.form.items()}


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    return value.strip() if isinstance(value, str) else ""


def _unavailable(err: Exception) -> tuple[Response, int]:
    return jsonify(error="store_unreachable", detail=f"the controls are kept in Redis: {type(err).__name__}"), 503


def control(action: str) -> tuple[Response, int]:
    """Pause, resume, close, open, announce or clear the announcement, as the JSON body says."""
    data = _body()
    try:
        done = apply(ext("controls"), ext("config").current, action, _text(data, "target"), _text(data, "by"),
                     _text(data, "why"), _text(data, "for") or None, _text(data, "until") or None)
    except OpsRefused as e:
        return jsonify(error="refused", detail=str(e)), 400
    except redis.RedisError as e:
        return _unavailable(e)
    return jsonify(done), 200


for _action in ACTIONS:
    bp.add_url_rule(f"/ops/{_action}", f"ops_{_action.replace('-', '_')}", functools.partial(control, _action),
                    methods=["POST"])


@bp.post("/ops/reload")
def reload_everywhere() -> tuple[Response, int]:
    """Ask every instance to reload its config; the id their answers come back under."""
    data = _body()
    by = _text(data, "by")
    if not by or len(by) > 64:
        return jsonify(error="refused", detail="say who you are: by (1-64 characters)"), 400
    try:
        ident = ext("controls").request_reload(by, _text(data, "why"))
    except redis.RedisError as e:
        return _unavailable(e)
    return jsonify(id=ident), 202


@bp.get("/ops/reload")
def reload_answers() -> tuple[Response, int]:
    """Every process's answer to a reload so far (`?id=`, default the latest asked): applied, unchanged or
    refused, with its config hash."""
    controls = ext("controls")
    try:
        ident = request.args.get("id") or controls.latest_reload() or ""
        if not RELOAD_ID.fullmatch(ident):
            return jsonify(id=None, instances={}), 200
        return jsonify(id=ident, instances=controls.reload_reports(ident)), 200
    except redis.RedisError as e:
        return _unavailable(e)


@bp.get("/ops/status")
def ops_status() -> tuple[Response, int]:
    """The controls in force, the live figures per partner, the latest audit entries."""
    try:
        return jsonify(status(ext("controls"), ext("config").current, ext("store").ttl)), 200
    except redis.RedisError as e:
        return _unavailable(e)
