"""The webhooks Twilio calls for a caller: /voice/incoming, the menus, waiting, queue and dial outcomes, the
referral lines, the status callback and the fallback URL. The signature check runs before each (ivr.web.guard)."""

from __future__ import annotations

from flask import Blueprint, Response
from twilio.twiml.voice_response import VoiceResponse

from common.facts import JST, jst_day
from ivr.call.step import Step
from ivr.call.transfer import DESK
from ivr.state import tally
from ivr.state.jobs import fold_call, fold_outcome, wait_bucket
from ivr.web import transfers
from ivr.web.helpers import (
    MAX_STEP,
    answer,
    digits,
    ext,
    flow,
    heard,
    lane,
    param,
    small_int,
)
from ivr.web.hook import hook
from ivr.web.live import read_ahead

bp = Blueprint("voice", __name__, url_prefix="/voice")
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


# -- the webhooks ---------------------------------------------------------------------------------------------
@bp.route("/incoming", methods=["POST", "GET"])
def incoming() -> Response:
    """A call comes in: the closed message, or the greeting and the menu of the options staffed now."""
    step = flow().incoming(hook().instant)
    entry = ext("settings").entries.get(param("To"), "other")
    ext("metrics").called(step.record["window"] if step.record else "open", entry)
    ext("store").count_caller(hook().instant, param("From", 64))
    step.record = {**(step.record or {}), "started": hook().instant.isoformat()}
    return answer(step)


@bp.route("/menu", methods=["POST", "GET"])
def menu() -> Response:
    """The key pressed (or words said) at the top menu."""
    step = flow().menu_choice(hook().instant, digits(), small_int("n", 1, 9) or 1, heard())
    if step.record and "option" in step.record and not step.crisis:  # a crisis is counted apart: nothing chosen
        ext("metrics").selections.labels(step.record["option"]).inc()
    return answer(step)


@bp.route("/language", methods=["POST", "GET"])
def language() -> Response:
    """The key pressed (or language named) at the language choice."""
    return answer(flow().language_choice(hook().instant, digits(), small_int("n", 1, 9) or 1, heard()))


@bp.route("/referrals", methods=["POST", "GET"])
def referrals() -> Response:
    """The caller's answer after the referral lines: hear them again, get them by SMS, or goodbye."""
    return answer(flow().referrals(hook().instant, digits(), lane(), small_int("n", 1, 9) or 1, heard()))


@bp.route("/wait", methods=["POST", "GET"])
def wait() -> Response:
    """One round of the queue's wait music: place in line, reassurance, or <Leave> past the maximum wait."""
    queue_time = small_int("QueueTime", 0, 86400)
    if queue_time < transfers.FIRST_ROUND:  # once per queue: its QueueSid and the lane stay
        transfers.noted_in_queue()  # so a counsellor who takes the caller moves them at once
    answering = param("h") == "1"  # the caller's answer to an honest estimate (ivr.call.patience)
    where = lane()
    if not param("q").startswith(DESK):  # with the note above, in one round trip
        read_ahead(param("p") if not answering and flow().estimates(queue_time, where) else None)
    if (over := transfers.leave_for_desk()) is not None:  # a counsellor took this caller: to their desk
        return over
    if answering:
        return answer(flow().patience.choice(hook().instant, where, digits()))
    return answer(flow().wait(where, param("p"), queue_time,
                              small_int("QueuePosition", 0, 9999), small_int("AvgQueueTime", 0, 86400)))


def give_back() -> None:
    """This call no longer holds a place at any partner (it was answered, left the queue, or ended)."""
    if hook().sid:
        capped = [p.id for p in flow().routing.partners.values() if p.capacity is not None]
        ext("store").give_back(hook().call, capped)


def partner_of() -> str:
    """The partner this queue or dial outcome is about, as named in the signed action URL."""
    pid = param("p")
    return pid if pid in flow().routing.partners else ""


def fold(kind: str, result: str, waited: int | None = None) -> dict[str, str]:
    """Queue an idempotent count of this outcome (campaign, day, partner, result, wait bucket; no caller data); the
    call's record as it was read for it (empty without a call)."""
    if not hook().sid:
        return {}
    store = ext("store")
    rec = store.call(hook().sid)
    talked = tally.talk_seconds(kind, result, rec, hook().instant, waited or 0, small_int("DialCallDuration", 0, 86400))
    if talked is not None:  # summed per hour and option when the call is folded (ivr/state/tally.py)
        store.record(hook().sid, talk=talked)
    store.enqueue(fold_outcome, {
        "call": hook().call, "step": str(small_int("s", 0, MAX_STEP)), "kind": kind,
        "campaign": rec.get("campaign", ""), "day": jst_day(hook().instant),
        "partner": rec.get("partner", ""), "result": result if result.replace("-", "").isalpha() else "unknown",
        "wait_bucket": wait_bucket(waited) if waited is not None else "",
    }, later=True)
    return rec


@bp.route("/queue-done", methods=["POST", "GET"])
def queue_done() -> Response:
    """The caller left a partner's queue: answered, hung up, or on down the chain."""
    if (over := transfers.to_desk()) is not None:  # not an outcome: still on the way to the partner's counsellor
        return over
    give_back()
    ext("store").left(param("q"), hook().sid)
    result = param("QueueResult").lower()
    waited = small_int("QueueTime", 0, 86400) + small_int("qt", 0, 86400)  # qt: the wait before a counsellor's desk
    rec = fold("queue", result, waited)
    ext("store").record(hook().sid, waited=waited)
    ext("metrics").queue_left(partner_of(), result, waited)
    return transfers.after_queue(result, rec) or answer(flow().queue_done(hook().instant, result, lane()))


@bp.route("/desk", methods=["POST", "GET"])
def desk() -> Response:
    """Twilio moved the caller out of the partner's queue for the counsellor who took them: over to their desk."""
    return transfers.moved()


@bp.route("/transfer", methods=["POST", "GET"])
def transfer() -> Response:
    """After a bridge: look again for what the counsellor decided (a transfer to another line, or goodbye)."""
    return transfers.poll()


@bp.route("/dial-done", methods=["POST", "GET"])
def dial_done() -> Response:
    """A dial to a phone partner ended: answered, or on down the chain."""
    give_back()
    status = param("DialCallStatus").lower()
    fold("dial", status)
    ext("metrics").dial_ended(partner_of(), status)
    return answer(flow().dial_done(hook().instant, status, lane()))


@bp.route("/status", methods=["POST", "GET"])
def status() -> Response:
    """Twilio's status callback: a finished call gives back its places and is counted once (204)."""
    call_status = param("CallStatus").lower()
    store = ext("store")
    if call_status in FINAL_STATUSES and hook().sid:
        give_back()
        rec = store.call(hook().sid)
        store.left(rec.get("queue", ""), hook().sid)
        began = tally.started(rec.get("started"), hook().instant)  # its day and hour, not those of its end
        store.enqueue(fold_call, {
            "call": hook().call,
            "campaign": rec.get("campaign", ""),
            "day": jst_day(began),
            "option": rec.get("option", ""),
            "outcome": rec.get("result") or rec.get("route") or rec.get("window") or "unknown",
            "hour": f"{began.astimezone(JST).hour:02d}",
            "overflowed": "1" if rec.get("step", "0") not in ("", "0") else "0",
            "waited": rec.get("waited", ""),
            "lang": rec.get("lang", ""), "talk": rec.get("talk", ""),
        }, later=True)
    hook().step = Step(twiml=VoiceResponse(), decision=f"status:{call_status or 'unknown'}")
    return Response(status=204)


@bp.route("/fallback", methods=["POST", "GET"])
def fallback() -> Response:
    """Twilio's fallback URL: the general line from the config loaded at boot, needing neither Redis nor a reload."""
    return answer(ext("flows").boot().fallback(hook().instant))
