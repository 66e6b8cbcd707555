"""Prometheus metrics: one registry per app, multiprocess mode under gunicorn (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, multiprocess

ENDPOINTS = ("incoming", "menu", "language", "wait", "queue_done", "dial_done", "referrals", "status", "fallback")
ROUTE_OUTCOMES = ("queued", "dialled", "overflowed", "referral", "closed", "fallback")
REJECTIONS = ("unsigned", "forged")
INPUT_PROBLEMS = ("wrong", "empty")
RELOAD_RESULTS = ("applied", "unchanged", "rejected")


class Metrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        r = self.registry = CollectorRegistry()
        self.calls = Counter("ivr_calls_total", "Calls received, by whether a campaign window was open",
                             ["window"], registry=r)
        self.selections = Counter("ivr_menu_selections_total", "Menu options chosen", ["option"], registry=r)
        self.bad_input = Counter("ivr_menu_bad_inputs_total", "Wrong keys and silences in a menu", ["kind"],
                                 registry=r)
        self.routes = Counter("ivr_routes_total", "Where callers were sent", ["outcome"], registry=r)
        self.rejected = Counter("ivr_webhook_rejected_total", "Webhook requests refused (bad or no signature)",
                                ["reason"], registry=r)
        self.errors = Counter("ivr_webhook_errors_total", "Webhooks answered with the safe fallback after an error",
                              ["endpoint"], registry=r)
        self.latency = Histogram("ivr_webhook_duration_seconds", "Time to answer a webhook", ["endpoint"],
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                 registry=r)
        self.degraded = Gauge("ivr_state_degraded", "1 while the shared store (Redis) is unreachable",
                              registry=r, multiprocess_mode="livemax")
        self.clock_offset = Gauge("ivr_clock_offset_seconds", "Simulated clock minus real time (0 when real)",
                                  registry=r, multiprocess_mode="livemax")
        self.clock_simulated = Gauge("ivr_clock_simulated", "1 when IVR_CLOCK set the clock", registry=r,
                                     multiprocess_mode="livemax")
        self.reloads = Counter("ivr_config_reloads_total", "Config loads after the first, by result", ["result"],
                               registry=r)
        self.config_rejected = Gauge("ivr_config_rejected", "1 while the files on disk failed validation and the "
                                     "last good config is serving", registry=r, multiprocess_mode="livemax")
        self.counsellor_logins = Counter("ivr_counsellor_logins_total", "Counsellor line logins, by result",
                                         ["result"], registry=r)
        for result in ("ok", "wrong_pin", "locked", "unknown_number"):
            self.counsellor_logins.labels(result)
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)
        for w in ("open", "closed"):
            self.calls.labels(w)
        for k in INPUT_PROBLEMS:
            self.bad_input.labels(k)
        for outcome in ROUTE_OUTCOMES:
            self.routes.labels(outcome)
        for reason in REJECTIONS:
            self.rejected.labels(reason)
        for e in ENDPOINTS:
            self.latency.labels(e)
            self.errors.labels(e)

    def prime(self, option_ids: tuple[str, ...]) -> None:
        """Show every option's counter from the start, at zero."""
        for o in option_ids:
            self.selections.labels(o)

    def exposition_app(self):
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return make_wsgi_app(registry)
        return make_wsgi_app(self.registry)


def init_app(app: Flask) -> None:
    metrics = Metrics()
    clock = app.extensions["ivr.clock"]
    metrics.clock_offset.set(clock.offset)
    metrics.clock_simulated.set(1 if clock.simulated else 0)
    app.extensions["ivr.metrics"] = metrics
