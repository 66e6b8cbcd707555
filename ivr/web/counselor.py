"""The counsellors' line: a registered phone and a PIN, then the caller who has waited longest, urgent first.

Counsellor numbers and PINs come from the partners file. Before each bridge the counsellor hears, in Japanese,
the option, the language and how long the caller waited; the caller hears that they are being connected.
"""

from __future__ import annotations

import hmac
from typing import Any

import structlog
from flask import Blueprint, Response, request, url_for
from twilio.twiml.voice_response import VoiceResponse

from common.facts import DIAL_ANSWERED, HOME
from ivr.call.step import Step
from ivr.web.helpers import answer, ext, flow, small_int
from routing.model import Counsellor

log = structlog.get_logger("ivr.counselor")
bp = Blueprint("counselor", __name__, url_prefix="/counselor")
MAX_TRIES = 3  # wrong PINs before the call ends
IDLE_ROUNDS = 10  # empty-queue waits (about a minute each) before the line says goodbye
DIAL_WAIT = 60  # seconds a counsellor waits on an empty queue for the next caller


def reply(r: VoiceResponse, decision: str) -> Response:
    """Answer a counsellor's step, with its decision for the log line."""
    return answer(Step(r, decision))


def counsellor() -> Counsellor | None:
    """The counsellor registered for the calling phone; None for any other number."""
    return flow().routing.counsellor(request.values.get("From") or "")


def say(r: Any, prompt: str, option: str | None = None, lang: str = HOME, **fields: str) -> None:
    """Speak one prompt (Japanese unless `lang` says otherwise) into a verb."""
    flow().speak(r, [flow().menu.line(lang, prompt, option, **fields)])


def unknown() -> Response:
    """A number that is not a counsellor's: told so, counted, and the call ends."""
    ext("metrics").counsellor_logins.labels("unknown_number").inc()
    log.warning("counsellor_unknown_number")
    r = VoiceResponse()
    say(r, "counsellor_unknown")
    r.hangup()
    return reply(r, "counsellor:unknown")


def ask_pin(r: VoiceResponse, tries: int) -> None:
    """Ask for the PIN (up to 8 digits, then #)."""
    g_ = r.gather(input="dtmf", num_digits=8, finish_on_key="#", timeout=10,
                  action=url_for("counselor.pin", n=tries), method="POST", action_on_empty_result=True)
    say(g_, "counsellor_pin")


@bp.route("/incoming", methods=["POST", "GET"])
def incoming() -> Response:
    """A counsellor calls in: a registered phone is asked for its PIN."""
    c = counsellor()
    if c is None:
        return unknown()
    r = VoiceResponse()
    ask_pin(r, 1)
    return reply(r, f"counsellor:{c.partner}:pin")


@bp.route("/pin", methods=["POST", "GET"])
def pin() -> Response:
    """The PIN entered: the right one bridges the next caller; three wrong ones end the call."""
    c = counsellor()
    if c is None:
        return unknown()
    given = "".join(ch for ch in (request.values.get("Digits") or "")[:16] if ch.isdigit())
    tries = small_int("n", 1, MAX_TRIES)
    if hmac.compare_digest(given.encode(), c.pin.encode()):
        ext("metrics").counsellor_logins.labels("ok").inc()
        log.info("counsellor_login", partner=c.partner)
        return bridge(c, 0)
    ext("metrics").counsellor_logins.labels("wrong_pin").inc()
    r = VoiceResponse()
    if tries >= MAX_TRIES:
        ext("metrics").counsellor_logins.labels("locked").inc()
        log.warning("counsellor_pin_locked", partner=c.partner, tries=tries)
        say(r, "counsellor_locked")
        r.hangup()
        return reply(r, f"counsellor:{c.partner}:locked")
    say(r, "counsellor_pin_wrong")
    ask_pin(r, tries + 1)
    return reply(r, f"counsellor:{c.partner}:pin_wrong")


def bridge(c: Counsellor, idle: int) -> Response:
    """Whisper who is next (urgent queue first) and dial that queue; with nobody waiting, wait on the queue."""
    routing, menu, store = flow().routing, flow().menu, ext("store")
    queues = routing.queues_of(c.partner)
    r = VoiceResponse()
    if not queues:  # a phone partner has no queue to take calls from
        say(r, "counsellor_none_waiting")
        r.hangup()
        return reply(r, f"counsellor:{c.partner}:no_queue")
    chosen, head = queues[-1], None
    for q in queues:
        head = store.next_waiting(q)
        if head is not None:
            chosen = q
            break
    lang = HOME
    if head is not None:
        record, waited = head
        option = menu.option(record.get("option", ""))
        lang = menu.known_language(record.get("lang"))
        label = menu.line(HOME, f"label.{option.id}").text if option else "ご用件不明の方"
        say(r, "counsellor_whisper", label=label, language=menu.language(lang).name_ja,
            minutes=str(max(1, round(waited / 60))))
        decision = f"counsellor:{c.partner}:bridge:{chosen}"
    elif store.degraded:
        say(r, "counsellor_whisper_unknown")
        decision = f"counsellor:{c.partner}:bridge_blind:{chosen}"
    else:
        say(r, "counsellor_none_waiting")
        decision = f"counsellor:{c.partner}:idle:{chosen}"
    dial = r.dial(timeout=DIAL_WAIT, action=url_for("counselor.after", i=idle), method="POST")
    dial.queue(chosen, url=url_for("counselor.connecting", l=lang), method="POST")
    return reply(r, decision)


@bp.route("/connecting", methods=["POST", "GET"])
def connecting() -> Response:
    """Played to the waiting caller just before the counsellor is connected, in the caller's language."""
    lang = flow().menu.known_language(request.values.get("l"))
    r = VoiceResponse()
    say(r, "connected_now", lang=lang)
    return reply(r, "counsellor:connecting")


@bp.route("/after", methods=["POST", "GET"])
def after() -> Response:
    """After a conversation: offer the next caller. After a wait with nobody: look again, for a while."""
    c = counsellor()
    if c is None:
        return unknown()
    status = (request.values.get("DialCallStatus") or "").lower()
    talked = status in DIAL_ANSWERED and small_int("DialCallDuration", 0, 86400) > 0
    r = VoiceResponse()
    if talked:
        g_ = r.gather(input="dtmf", num_digits=1, timeout=10, action=url_for("counselor.next_caller"), method="POST",
                      action_on_empty_result=True)
        say(g_, "counsellor_next")
        return reply(r, f"counsellor:{c.partner}:after_call")
    idle = small_int("i", 0, IDLE_ROUNDS) + 1
    if idle >= IDLE_ROUNDS:
        say(r, "counsellor_bye")
        r.hangup()
        return reply(r, f"counsellor:{c.partner}:idle_end")
    return bridge(c, idle)


@bp.route("/next", methods=["POST", "GET"])
def next_caller() -> Response:
    """After a conversation: 1 takes the next caller, anything else says goodbye."""
    c = counsellor()
    if c is None:
        return unknown()
    if (request.values.get("Digits") or "") == "1":
        return bridge(c, 0)
    r = VoiceResponse()
    say(r, "counsellor_bye")
    r.hangup()
    return reply(r, f"counsellor:{c.partner}:done")

