"""The counsellors' line: each counsellor's own id and PIN, then the caller who has waited longest, urgent first.

A counsellor keys their id then #, their PIN then #. The PIN is checked against its scrypt hash from the partners
file (an unknown id against a dummy hash, so it takes as long); a counsellor listed with `numbers` must also call
from one of them. A wrong id, a wrong PIN, a wrong phone and a locked-out id or number all hear the same words.
Wrong tries are counted across calls and instances in Redis, by Redis's clock, per id and per calling number (a
withheld number is not counted) in ivr.state.logins; without Redis nobody logs in. Every try is a log line and a
count by partner, never by id or number.

After the login the call's action URLs carry the counsellor's id and a tag binding it to this CallSid. Before each
bridge the counsellor takes the caller who has waited longest and nobody else took (ivr.state.handover) and hears,
in Japanese, that caller's option, language and wait; the caller comes over to the counsellor's own queue (their
desk) and hears that they are being connected. `*` ends a bridge without ending either call: the counsellor may then
pass the caller on to another option's line (ivr.web.transfers, ivr.call.transfer) or flag an emergency
(ivr.state.emergency) while the caller holds.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import structlog
from flask import Blueprint, Response, url_for
from twilio.twiml.voice_response import VoiceResponse

from common.facts import DIAL_ANSWERED, HOME
from ivr.call.step import Step
from ivr.state import emergency as emergency_flags
from ivr.state import handover
from ivr.state.gauges import caller_taken, counsellor_seen
from ivr.state.logins import Attempt
from ivr.web.helpers import answer, ext, flow, param, small_int
from ivr.web.hook import hook
from ivr.web.transfers import desk_name, move_now
from routing.model import Counsellor
from routing.pins import DUMMY_HASH, PIN_MAX, pin_matches

log = structlog.get_logger("ivr.counselor")
bp = Blueprint("counselor", __name__, url_prefix="/counselor")
MAX_TRIES = 3  # wrong logins in one call before it ends
ID_MAX = 8  # digits of a counsellor id
IDLE_ROUNDS = 10  # empty-queue waits (about a minute each) before the line says goodbye
DIAL_WAIT = 60  # seconds a counsellor waits on an empty queue for the next caller
DESK_WAIT = 45  # seconds a counsellor waits at their desk for the caller they took (a wait round is about 20 s)
LOOK_AGAIN = 5  # seconds before looking again while the callers waiting are on their way to other desks
SESSION_CONTEXT = b"ivr counsellor session\x00"
EMERGENCY_KEYS = {"7": "yes", "8": "no"}  # after `*`: emergency, the caller consented / did not


def reply(r: VoiceResponse, decision: str) -> Response:
    """Answer a counsellor's step, with its decision for the log line."""
    return answer(Step(r, decision))


def say(r: Any, prompt: str, option: str | None = None, lang: str = HOME, **fields: str) -> None:
    """Speak one prompt (Japanese unless `lang` says otherwise) into a verb."""
    flow().speak(r, [flow().menu.line(lang, prompt, option, **fields)])


def keyed(name: str) -> str:
    """The digits of a parameter (what was keyed, or the id an action URL carries); anything else dropped."""
    return "".join(ch for ch in param(name, 16) if ch in "0123456789")


def session_tag(counsellor_id: str) -> str:
    """What binds a login to this call: an HMAC of the CallSid and the id under the service's hash key."""
    message = SESSION_CONTEXT + (hook().sid or "").encode() + b"\x00" + counsellor_id.encode()
    return hmac.new(ext("settings").hash_key, message, hashlib.sha256).hexdigest()[:32]


def logged_in() -> Counsellor | None:
    """The counsellor this call logged in as (named by the action URL, bound to this CallSid); None otherwise."""
    cid, tag = keyed("c"), param("k")
    if not cid or hook().sid is None or not hmac.compare_digest(tag.encode(), session_tag(cid).encode()):
        return None
    return flow().routing.counsellor(cid)


def session(c: Counsellor, **query: Any) -> dict[str, Any]:
    """An action URL's query for a logged-in counsellor's next step: `query`, their id and this call's tag."""
    return {**query, "c": c.id, "k": session_tag(c.id)}


def not_logged_in() -> Response:
    """A step that needs a login without one (or for a counsellor since removed): goodbye, and the call ends."""
    log.warning("counsellor_not_logged_in")
    r = VoiceResponse()
    say(r, "counsellor_bye")
    r.hangup()
    return reply(r, "counsellor:not_logged_in")


def ask_id(r: VoiceResponse, tries: int, prompt: str) -> None:
    """Ask for the counsellor's id (up to 8 digits, then #)."""
    g_ = r.gather(input="dtmf", num_digits=ID_MAX, finish_on_key="#", timeout=10,
                  action=url_for("counselor.id_keyed", n=tries), method="POST", action_on_empty_result=True)
    say(g_, prompt)


@bp.route("/incoming", methods=["POST", "GET"])
def incoming() -> Response:
    """A counsellor calls in, from any phone: asked for their id."""
    r = VoiceResponse()
    ask_id(r, 1, "counsellor_id")
    return reply(r, "counsellor:id")


@bp.route("/id", methods=["POST", "GET"])
def id_keyed() -> Response:
    """The id keyed: the PIN is asked for whatever the id was (an unknown one is only told with the PIN)."""
    tries = small_int("n", 1, MAX_TRIES)
    r = VoiceResponse()
    g_ = r.gather(input="dtmf", num_digits=PIN_MAX, finish_on_key="#", timeout=10,
                  action=url_for("counselor.pin", c=keyed("Digits"), n=tries), method="POST",
                  action_on_empty_result=True)
    say(g_, "counsellor_pin")
    return reply(r, "counsellor:pin")


def check(counsellor_id: str, pin: str) -> tuple[str, Counsellor | None, tuple[str, ...]]:
    """(result, the id's counsellor if any, what this try locked out): ok, wrong, empty, locked or unavailable."""
    c = flow().routing.counsellor(counsellor_id) if counsellor_id else None
    if not counsellor_id or not pin:  # nothing tried, nothing counted
        return "empty", c, ()
    logins = ext("logins")
    attempt: Attempt | str = logins.begin(counsellor_id, param("From", 32))  # by Redis's clock, not the app's
    if not isinstance(attempt, Attempt):
        return attempt, c, ()
    right = pin_matches(c.pin_hash if c else DUMMY_HASH, pin)  # as long for an unknown id as for a known one
    if right and c is not None and (not c.numbers or param("From", 32) in c.numbers):
        logins.succeeded(attempt)
        return "ok", c, ()
    return "wrong", c, logins.failed(attempt)


@bp.route("/pin", methods=["POST", "GET"])
def pin() -> Response:
    """The PIN keyed: the right one for the id bridges the next caller. Anything else, a locked-out id or number
    included, hears the same words; three in one call end it. Without Redis nobody is let in."""
    tries = small_int("n", 1, MAX_TRIES)
    result, c, locked = check(keyed("c"), keyed("Digits"))
    partner = c.partner if c else "unknown"
    metrics = ext("metrics")
    metrics.counsellor_logins.labels(partner, result).inc()
    for subject in locked:
        metrics.counsellor_lockouts.labels(partner, subject).inc()
        log.warning("counsellor_lockout", partner=partner, locked=subject)
    if result == "ok" and c is not None:
        log.info("counsellor_login", partner=partner)
        return bridge(c, 0)
    r = VoiceResponse()
    if result == "unavailable":  # decided before the PIN was checked: says nothing about it
        log.error("counsellor_login_refused", partner=partner, result=result)
        say(r, "counsellor_unavailable")
        r.hangup()
        return reply(r, "counsellor:unavailable")
    log.warning("counsellor_login_refused", partner=partner, result=result, tries=tries)
    if tries >= MAX_TRIES:
        say(r, "counsellor_locked")
        r.hangup()
        return reply(r, f"counsellor:{result}:end")
    ask_id(r, tries + 1, "counsellor_pin_wrong")
    return reply(r, f"counsellor:{result}")


def bridge(c: Counsellor, idle: int) -> Response:
    """Take the caller who has waited longest (urgent queue first), whisper who they are, and dial this
    counsellor's desk, where that caller, and only they, comes over: moved by Twilio at once, else at their next
    wait round (ivr.web.transfers). With nobody waiting, wait on the partner's queue (whoever comes next is bridged
    at once, with no whisper); while the only callers waiting are on their way to other desks, look again shortly.
    `*` during the bridge ends it for a transfer."""
    routing, menu, store = flow().routing, flow().menu, ext("store")
    if not store.degraded:  # "logged in" on the dashboard: seen on the line lately (by session tag, never the id)
        counsellor_seen(store.client, c.partner, session_tag(c.id))
    queues = routing.queues_of(c.partner)
    r = VoiceResponse()
    if not queues:  # a phone partner has no queue to take calls from
        say(r, "counsellor_none_waiting")
        r.hangup()
        return reply(r, f"counsellor:{c.partner}:no_queue")
    after = url_for("counselor.after", **session(c, i=idle))
    handover.unpaired(store, hook().sid)
    desk = desk_name(c.id)
    took = handover.claim(store, queues, desk)
    if took is not None:
        caller_taken(store.client, c.partner, session_tag(c.id))  # the answering rate, for honest wait estimates
        option = menu.option(took.record.get("option", ""))
        lang = menu.known_language(took.record.get("lang"))
        label = menu.line(HOME, f"label.{option.id}").text if option else "ご用件不明の方"
        say(r, "counsellor_whisper", label=label, language=menu.language(lang).name_ja,
            minutes=str(max(1, round(took.waited / 60))))
        dial = r.dial(timeout=DESK_WAIT, action=after, method="POST", hangup_on_star=True)
        dial.queue(desk, url=url_for("counselor.connecting", l=lang), method="POST")
        move_now(took, desk)  # the caller over to the desk now; else at their next wait round
        return reply(r, f"counsellor:{c.partner}:bridge:{took.queue}")
    if not store.degraded and handover.waiting_unclaimed(store, queues):
        r.pause(length=LOOK_AGAIN)  # callers on their way to other desks: the partner's queue is not for now
        r.redirect(after, method="POST")
        return reply(r, f"counsellor:{c.partner}:look_again")
    chosen = queues[-1]
    if store.degraded:
        say(r, "counsellor_whisper_unknown")
        decision = f"counsellor:{c.partner}:bridge_blind:{chosen}"
    else:
        say(r, "counsellor_none_waiting")
        decision = f"counsellor:{c.partner}:idle:{chosen}"
    dial = r.dial(timeout=DIAL_WAIT, action=after, method="POST", hangup_on_star=True)
    dial.queue(chosen, url=url_for("counselor.connecting", l=HOME), method="POST")
    return reply(r, decision)


@bp.route("/connecting", methods=["POST", "GET"])
def connecting() -> Response:
    """Played to the waiting caller just before the counsellor is connected, in the caller's language. Twilio runs
    the `<Queue url>` document on the dequeued caller's leg, and its request names both calls: CallSid is the
    dequeued caller's, DequeingCallSid the counsellor's (twilio.com/docs/voice/twiml/queue, "url"); the pair is
    kept so the counsellor's steps after the bridge know whom a transfer or an emergency flag is about."""
    handover.paired(ext("store"), param("DequeingCallSid"), hook().sid)
    ext("store").record(hook().sid, bridged="counsellors_line")  # its queue action then waits for a transfer
    lang = flow().menu.known_language(ext("store").call(hook().sid).get("lang") or param("l"))
    r = VoiceResponse()
    say(r, "connected_now", lang=lang)
    return reply(r, "counsellor:connecting")


@bp.route("/after", methods=["POST", "GET"])
def after() -> Response:
    """After a conversation: offer the next caller. After a wait with nobody: look again, for a while."""
    c = logged_in()
    if c is None:
        return not_logged_in()
    status = param("DialCallStatus").lower()
    talked = status in DIAL_ANSWERED and small_int("DialCallDuration", 0, 86400) > 0
    r = VoiceResponse()
    if talked:
        caller = handover.bridged_to(ext("store"), hook().sid)
        if param("CallStatus").lower() == "completed":  # the counsellor hung up: the caller's call ends as always
            handover.decide(ext("store"), caller, handover.ENDED)
            return reply(r, f"counsellor:{c.partner}:hung_up")
        if caller is not None:  # `*` (or the caller hung up): the caller holds while the counsellor chooses
            handover.decide(ext("store"), caller, handover.PENDING)
        return after_menu(c, caller is not None)
    idle = small_int("i", 0, IDLE_ROUNDS) + 1
    if idle >= IDLE_ROUNDS:
        say(r, "counsellor_bye")
        r.hangup()
        return reply(r, f"counsellor:{c.partner}:idle_end")
    return bridge(c, idle)


@bp.route("/next", methods=["POST", "GET"])
def next_caller() -> Response:
    """After a conversation: 1 takes the next caller, anything else says goodbye."""
    c = logged_in()
    if c is None:
        return not_logged_in()
    key = param("Digits", 16)
    caller = handover.bridged_to(ext("store"), hook().sid)
    if caller is not None and key == "*":
        return transfer_menu(c)
    if caller is not None and key in EMERGENCY_KEYS:
        return emergency(c, caller, EMERGENCY_KEYS[key])
    handover.end(ext("store"), caller)  # unless a transfer was chosen, the caller hears goodbye
    if key == "1":
        return bridge(c, 0)
    r = VoiceResponse()
    say(r, "counsellor_bye")
    r.hangup()
    return reply(r, f"counsellor:{c.partner}:done")


# -- after `*`: a transfer to another option's line, or an emergency flag ------------------------------------------
def after_menu(c: Counsellor, with_caller: bool, *before: str) -> Response:
    """After a conversation: transfer (`*`) and emergency keys while the caller holds, then 1 for the next caller."""
    r = VoiceResponse()
    g_ = r.gather(input="dtmf", num_digits=1, timeout=10, action=url_for("counselor.next_caller", **session(c)),
                  method="POST", action_on_empty_result=True)
    for prompt in before:
        say(g_, prompt)
    if with_caller:
        say(g_, "counsellor_after")
    say(g_, "counsellor_next")
    return reply(r, f"counsellor:{c.partner}:after_call")


def transfer_menu(c: Counsellor, *before: str) -> Response:
    """The options offered now, each with its key, for the line the caller is passed on to."""
    f = flow()
    campaign = f.routing.window_at(hook().instant)
    layout = campaign.menu if campaign else "default"
    offered = f.offered(hook().instant)
    r = VoiceResponse()
    g_ = r.gather(input="dtmf", num_digits=1, timeout=10, action=url_for("counselor.transfer", **session(c)),
                  method="POST", action_on_empty_result=True)
    for prompt in (*before, "counsellor_transfer"):
        say(g_, prompt)
    for o in f.menu.options_menu_options(layout):
        if o.id in offered:
            say(g_, "option_line", key=o.key, label=f.menu.line(HOME, f"label.{o.id}").text)  # plain wording
    return reply(r, f"counsellor:{c.partner}:transfer_menu")


@bp.route("/transfer", methods=["POST", "GET"])
def transfer() -> Response:
    """The target option's key (then, for the foreign-language line, the language's): the caller is passed on."""
    c = logged_in()
    if c is None:
        return not_logged_in()
    f, store = flow(), ext("store")
    caller = handover.bridged_to(store, hook().sid)
    campaign = f.routing.window_at(hook().instant)
    option = f.menu.option_for_key(param("Digits", 16), campaign.menu if campaign else "default")
    if caller is None or not param("Digits", 16):  # nothing keyed: the menu after the conversation again
        return after_menu(c, caller is not None)
    if option is None or option.id not in f.offered(hook().instant):
        return transfer_menu(c, "invalid")
    if option.choose_language and param("o") != option.id:
        r = VoiceResponse()
        g_ = r.gather(input="dtmf", num_digits=1, timeout=10,
                      action=url_for("counselor.transfer", **session(c, o=option.id)), method="POST",
                      action_on_empty_result=True)
        say(g_, "counsellor_transfer_language")
        for key, code in f.menu.spec.language_keys.items():
            say(g_, "counsellor_language_line", key=key, language=f.menu.language(code).name_ja)
        return reply(r, f"counsellor:{c.partner}:transfer_language")
    lang = f.menu.known_language(store.call(caller).get("lang"))
    if option.choose_language:
        chosen = f.menu.language_for_key(param("Digits", 16))
        if chosen is None:
            return transfer_menu(c, "invalid")
        lang = chosen  # else the caller keeps their language on the new line
    recorded = handover.decide(store, caller, "to", option.id, lang)
    log.info("counsellor_transfer", partner=c.partner, to_option=option.id, recorded=recorded)
    # not recorded: the caller's side, which waits for the choice, puts them through to the general line
    r = VoiceResponse()
    g_ = r.gather(input="dtmf", num_digits=1, timeout=10, action=url_for("counselor.next_caller", **session(c)),
                  method="POST", action_on_empty_result=True)
    say(g_, "counsellor_transferred", label=f.menu.line(HOME, f"label.{option.id}").text)
    say(g_, "counsellor_next")
    return reply(r, f"counsellor:{c.partner}:transferred:{option.id}")


def emergency(c: Counsellor, caller: str, consent: str) -> Response:
    """Flag the caller's call as an emergency (partner, option, time, consent; nothing else), for supervisors."""
    store = ext("store")
    option = store.call(caller).get("option", "")
    raised = emergency_flags.raise_flag(store.client, caller, c.partner, option, consent, hook().instant)
    if raised:
        ext("metrics").emergency_flags.labels(consent).inc()
    log.warning("emergency_flag", partner=c.partner, option=option, consent=consent, recorded=raised)
    return after_menu(c, True, "counsellor_emergency" if raised else "counsellor_emergency_failed")
