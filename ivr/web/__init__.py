"""The web layer: every URL Twilio or an operator reaches.

- `voice`: the caller's webhooks (/voice/*); `counselor`: the counsellors' line (/counselor/*);
- `admin`: /healthz, /readyz, /admin/reload; `audio`: recorded prompts (/audio/*);
- `guard`: the signature check, the canonical log line and the safe answer on errors;
- `helpers`: request parameters and the answer, shared by the blueprints; `adapters`: what the call flow asks of
  the web side (URLs, places at partners, SMS), and the flow of each loaded config.
"""

from __future__ import annotations

from flask import Flask
from twilio.request_validator import RequestValidator

from ivr.web import admin, audio, counselor, guard, live, voice
from ivr.web import ops as ops  # the live controls' routes, on the admin blueprint: imported before it registers
from ivr.web.adapters import Flows


def init_app(app: Flask) -> None:
    """Register the body limits, the signature check, the blueprints, health and readiness, and the error
    handler."""
    app.config["MAX_CONTENT_LENGTH"] = guard.MAX_BODY  # werkzeug refuses a larger body (413) instead of reading it
    app.config["MAX_FORM_PARTS"] = guard.MAX_FIELDS
    app.extensions["ivr.validator"] = RequestValidator(app.extensions["ivr.settings"].auth_token)
    app.extensions["ivr.flows"] = Flows(app.extensions["ivr.config"])
    app.before_request(guard.before)
    app.before_request(live.follow_reload)  # an operator's `ivr ops reload`, taken by each process
    app.after_request(guard.after)
    app.teardown_request(guard.teardown)
    app.register_blueprint(voice.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(counselor.bp)
    audio.init_app(app)
    app.add_url_rule("/healthz", "healthz", admin.healthz)
    app.add_url_rule("/readyz", "readyz", admin.readyz)
    app.register_error_handler(Exception, guard.on_error)
