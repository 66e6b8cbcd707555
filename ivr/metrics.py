"""Prometheus metrics: one registry per app, multiprocess mode under gunicorn (PROMETHEUS_MULTIPROC_DIR).

prometheus-client decides where every process writes its values from PROMETHEUS_MULTIPROC_DIR in that process's own
environment, so the directory must be set in the environment of the web workers and the RQ workers alike (ivr serve
sets it for gunicorn); /metrics reads the directory the settings name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ivr.state.emergency import CONSENT
from ivr.state.handover import MOVES
from ivr.state.jobs import SMS_REASONS, sms_failures, sms_outcomes
from ivr.state.logins import SUBJECTS as LOCKOUT_SUBJECTS

ENDPOINTS = ("incoming", "menu", "language", "wait", "queue_done", "dial_done", "referrals", "status", "fallback",
             "transfer", "desk")
ROUTE_OUTCOMES = ("queued", "dialled", "overflowed", "referral", "closed", "fallback")
REJECTIONS = ("unsigned", "forged", "too_large")
INPUT_PROBLEMS = ("wrong", "empty", "unclear", "unsure")  # unclear: speech that named nothing; unsure: confirm
RELOAD_RESULTS = ("applied", "unchanged", "rejected")
QUEUE_RESULTS = ("bridged", "bridging-in-process", "error", "hangup", "leave", "redirected",
                 "redirected-from-bridged", "queue-full", "system-error", "other")
DIAL_RESULTS = ("completed", "answered", "busy", "no-answer", "failed", "canceled", "other")
SMS_RESULTS = ("queued", "failed")
# ok; wrong: id, PIN or phone; empty: nothing keyed; locked: the id or number is locked out; unavailable: no Redis
LOGIN_RESULTS = ("ok", "wrong", "empty", "locked", "unavailable")


class Metrics:
    """Every series the service exports, in one registry, with their label sets pre-initialised at zero."""

    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir  # PROMETHEUS_MULTIPROC_DIR: every worker writes its own files there
        self.collectors: list[Collector] = []
        r = self.registry = CollectorRegistry()
        r.register(sms_failures())
        r.register(sms_outcomes())  # counted in the RQ worker; every reason shown here at zero from the start
        for reason in SMS_REASONS:
            sms_outcomes().labels(reason)
        self.calls = Counter("ivr_calls_total", "Calls received, by whether a window was open and the number dialled",
                             ["window", "entry"], registry=r)
        self.selections = Counter("ivr_menu_selections_total", "Menu options chosen", ["option"], registry=r)
        self.bad_input = Counter("ivr_menu_bad_inputs_total", "Wrong keys and silences in a menu", ["kind"],
                                 registry=r)
        self.audio_fallbacks = Counter("ivr_audio_fallbacks_total", "Recorded prompts that were missing when played, "
                                       "by language and what was said instead (same: its voice, en: English)",
                                       ["language", "to"], registry=r)
        self.routes = Counter("ivr_routes_total", "Where callers were sent", ["outcome"], registry=r)
        self.crisis = Counter("ivr_crisis_total", "Callers who said words of suicidal crisis at a menu and were put "
                              "through on the urgent lane, by the option they were routed by and their language "
                              "(never the words)", ["option", "language"], registry=r)
        self.rejected = Counter("ivr_webhook_rejected_total", "Webhook requests refused (bad or no signature, "
                                "or a body over the limits)",
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
        self.queue_results = Counter("ivr_queue_results_total", "How callers left a partner's queue",
                                     ["partner", "result"], registry=r)
        self.queue_wait = Histogram("ivr_queue_wait_seconds", "Time callers waited in a partner's queue",
                                    ["partner"], buckets=(30, 60, 120, 180, 300, 600, 900, 1200, 1800, 3600),
                                    registry=r)
        self.dial_results = Counter("ivr_dial_results_total", "How dials to phone partners ended",
                                    ["partner", "status"], registry=r)
        self.sms = Counter("ivr_sms_referrals_total", "Referral SMS offered and taken, by result", ["result"],
                           registry=r)
        for result in SMS_RESULTS:
            self.sms.labels(result)
        self.counsellor_logins = Counter("ivr_counsellor_logins_total", "Counsellor line login tries, by the partner "
                                         "of the id keyed ('unknown' for an id nobody has) and result (never by "
                                         "id or number)", ["partner", "result"], registry=r)
        self.counsellor_lockouts = Counter("ivr_counsellor_lockouts_total", "Counsellor ids or calling numbers "
                                           "locked out after too many wrong tries, by partner and which was locked",
                                           ["partner", "locked"], registry=r)
        self.transfers = Counter("ivr_transfers_total", "Callers a counsellor passed on to another option's line "
                                 "(to the general line when the transfer failed), by option from and to",
                                 ["from_option", "to_option"], registry=r)
        self.emergency_flags = Counter("ivr_emergency_flags_total", "Emergency flags counsellors raised, by whether "
                                       "the caller consented", ["consent"], registry=r)
        for consent in CONSENT:
            self.emergency_flags.labels(consent)
        self.desk_moves = Counter("ivr_desk_moves_total", "Callers a counsellor took, by whether Twilio moved them to "
                                  "the counsellor's desk at once (moved; gone: no longer in that queue; failed; off: "
                                  "not asked) rather than at their next wait round", ["result"], registry=r)
        for result in MOVES:
            self.desk_moves.labels(result)
        self.prime_logins(("unknown",))
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)

        for k in INPUT_PROBLEMS:
            self.bad_input.labels(k)
        for outcome in ROUTE_OUTCOMES:
            self.routes.labels(outcome)
        for reason in REJECTIONS:
            self.rejected.labels(reason)
        # Each webhook's latency series, looked up once: labels() checks and locks at every call.
        self.latency_of = {e: self.latency.labels(e) for e in ENDPOINTS}
        self._calls: dict[tuple[str, str], Any] = {}  # (window, entry) -> its series, as for latency_of
        for e in ENDPOINTS:
            self.errors.labels(e)

    def prime(self, option_ids: tuple[str, ...], queue_partners: tuple[str, ...] = (),
              phone_partners: tuple[str, ...] = (), entries: tuple[str, ...] = (),
              recorded: tuple[str, ...] = (), languages: tuple[str, ...] = ()) -> None:
        """Show every option's, partner's, entry number's and language's series from the start, at zero."""
        for lang in recorded:
            for to in ("same", "en"):
                self.audio_fallbacks.labels(lang, to)
        for w in ("open", "closed"):
            for entry in (*entries, "other"):
                self.calls.labels(w, entry)
        for o in option_ids:
            self.selections.labels(o)
            for to in option_ids:
                self.transfers.labels(o, to)
            for lang in languages:
                self.crisis.labels(o, lang)
        for p in queue_partners:
            self.queue_wait.labels(p)
            for result in QUEUE_RESULTS:
                self.queue_results.labels(p, result)
        for p in phone_partners:
            for status in DIAL_RESULTS:
                self.dial_results.labels(p, status)

    def prime_logins(self, partners: tuple[str, ...]) -> None:
        """Show every partner's counsellor login series from the start, at zero."""
        for p in partners:
            for result in LOGIN_RESULTS:
                self.counsellor_logins.labels(p, result)
            for locked in LOCKOUT_SUBJECTS:
                self.counsellor_lockouts.labels(p, locked)

    def called(self, window: str, entry: str) -> None:
        """Count a call received (`window` open or closed, `entry` the number dialled, both from small fixed sets)."""
        series = self._calls.get((window, entry))
        if series is None:
            series = self._calls[window, entry] = self.calls.labels(window, entry)
        series.inc()

    def queue_left(self, partner: str, result: str, waited: int) -> None:
        """Count how a caller left a partner's queue, and how long they waited."""
        self.queue_results.labels(partner or "unknown", result if result in QUEUE_RESULTS else "other").inc()
        self.queue_wait.labels(partner or "unknown").observe(waited)

    def transfer(self, from_option: str, to_option: str) -> None:
        """Count a caller passed on by a counsellor to another option's line."""
        self.transfers.labels(from_option, to_option).inc()

    def dial_ended(self, partner: str, status: str) -> None:
        """Count how a dial to a phone partner ended."""
        self.dial_results.labels(partner or "unknown", status if status in DIAL_RESULTS else "other").inc()

    def watch(self, config: Any, clock: Any) -> None:
        """Gauges read from the config and the clock at scrape time: window open, options offered, max waits."""
        self.collectors.append(ConfigCollector(config, clock))
        self.registry.register(self.collectors[-1])

    def exposition_app(self) -> Any:
        """The WSGI app that serves /metrics: every worker's files in multiprocess mode, else this registry."""
        if self.multiprocess_dir is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=str(self.multiprocess_dir))
            for c in self.collectors:
                registry.register(c)
            return make_wsgi_app(registry)
        return make_wsgi_app(self.registry)


class ConfigCollector(Collector):
    """What the config says right now: whether a campaign window is open, which options are offered, each
    partner's maximum wait (for the queue-wait alert)."""

    def __init__(self, config: Any, clock: Any):
        self.config = config
        self.clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The gauges as the config and the clock say now."""
        routing = self.config.current.routing
        now = self.clock.now()
        window = GaugeMetricFamily("ivr_campaign_window_open", "1 while a campaign window is open", labels=["campaign"])
        campaign = routing.window_at(now)
        window.add_metric([campaign.id if campaign else ""], 1 if campaign else 0)
        yield window
        offered = GaugeMetricFamily("ivr_option_offered", "1 when the menu offers the option now", labels=["option"])
        now_offered = routing.offered(now)
        for option in self.config.current.menu.all_option_ids:
            offered.add_metric([option], 1 if option in now_offered else 0)
        yield offered
        max_wait = GaugeMetricFamily("ivr_partner_max_wait_seconds", "A queue partner's maximum wait",
                                     labels=["partner"])
        for p in routing.partners.values():
            if p.kind == "queue":
                max_wait.add_metric([p.id], p.max_wait)
        yield max_wait


def init_app(app: Flask) -> None:
    """The app's metrics (app.extensions["ivr.metrics"]), with the clock's offset."""
    metrics = Metrics(app.extensions["ivr.settings"].metrics_dir)
    clock = app.extensions["ivr.clock"]
    metrics.clock_offset.set(clock.offset)
    metrics.clock_simulated.set(1 if clock.simulated else 0)
    app.extensions["ivr.metrics"] = metrics


def watch_config(app: Flask) -> None:
    """Series for every option, partner, entry number and recorded language of the boot config, at zero, and the
    gauges read from the config serving now."""
    metrics, config, settings = (app.extensions[f"ivr.{n}"] for n in ("metrics", "config", "settings"))
    boot = config.boot
    partners = boot.routing.partners.values()
    metrics.prime(boot.menu.all_option_ids,
                  tuple(p.id for p in partners if p.kind == "queue"),
                  tuple(p.id for p in partners if p.kind == "phone"),
                  tuple(dict.fromkeys(settings.entries.values())),
                  tuple(c for c, lang in boot.menu.spec.languages.items() if lang.recorded),
                  tuple(boot.menu.spec.languages))
    metrics.prime_logins(tuple(p.id for p in partners))
    metrics.watch(config, app.extensions["ivr.clock"])
