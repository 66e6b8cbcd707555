"""The application factory: settings, then one init_app per subsystem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from ivr import config, logs, metrics, state, views
from ivr.clock import Clock
from ivr.settings import load_settings


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then the environment, then `overrides` (which may also carry a ready `CLOCK`)."""
    app = Flask("ivr")
    settings = load_settings(overrides)
    app.extensions["ivr.settings"] = settings
    logs.init_app(app)
    clock = (overrides or {}).get("CLOCK") or Clock.from_setting(settings.clock)
    app.extensions["ivr.clock"] = clock
    metrics.init_app(app)
    config.init_app(app)
    boot = app.extensions["ivr.config"].boot
    partners = boot.routing.partners.values()
    app.extensions["ivr.metrics"].prime(boot.menu.all_option_ids,
                                        tuple(p.id for p in partners if p.kind == "queue"),
                                        tuple(p.id for p in partners if p.kind == "phone"),
                                        tuple(dict.fromkeys(settings.entries.values())),
                                        tuple(c for c, lang in boot.menu.spec.languages.items() if lang.recorded))
    app.extensions["ivr.metrics"].watch(app.extensions["ivr.config"], clock)
    state.init_app(app)
    views.init_app(app)
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        DispatcherMiddleware(app.wsgi_app, {"/metrics": app.extensions["ivr.metrics"].exposition_app()}),
        x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1,
    )
    structlog.get_logger("ivr").info("started", clock=clock.describe(), store=app.extensions["ivr.store"].kind)
    return app
