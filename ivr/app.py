"""The application factory: settings, then one init_app per subsystem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr import logs, metrics, web
from ivr.clock import Clock
from ivr.settings import load_settings
from ivr.state import config, controls, emergency, gauges, logins, store
from ivr.web.front import Front


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then the environment, then `overrides` (which may also carry a ready `CLOCK`)."""
    app = Flask("ivr")
    settings = app.extensions["ivr.settings"] = load_settings(overrides)
    clock = app.extensions["ivr.clock"] = (overrides or {}).get("CLOCK") or Clock.from_setting(settings.clock)
    logs.init_app(app)
    metrics.init_app(app)
    config.init_app(app)
    metrics.watch_config(app)
    store.init_app(app)
    logins.init_app(app)
    controls.init_app(app)
    gauges.init_app(app)
    emergency.init_app(app)
    web.init_app(app)
    flask_side = DispatcherMiddleware(app.wsgi_app, {"/metrics": app.extensions["ivr.metrics"].exposition_app()})
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        Front(app, flask_side),  # the caller's signed webhooks straight off WSGI; the rest to Flask
        x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1,
    )
    structlog.get_logger("ivr").info("started", clock=clock.describe(), store=app.extensions["ivr.store"].kind)
    return app
