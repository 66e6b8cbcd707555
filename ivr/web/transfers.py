"""The caller's webhooks' part in the counsellors' line: over to the desk of the counsellor who took the caller, and
what happens when their bridge ends (ivr.call.transfer). The voice blueprint calls these; the state is in
ivr.state.handover, named by CallSid only.

A caller a counsellor took goes over to the desk by whichever comes first: Twilio moving them at the counsellor's
request (`move_now`, then `/voice/desk`; Twilio also requests the partner queue's action, QueueResult `redirected`),
or their next wait round (`<Leave>`, then the action, QueueResult `leave`). Each of these answers with the same
`<Enqueue>` to the desk, so it does not matter which of them Twilio acts on or in what order they come."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

import structlog
from flask import Response
from twilio.twiml.voice_response import VoiceResponse

from common.facts import QUEUE_ANSWERED
from ivr.call import transfer
from ivr.call.step import Step
from ivr.state import handover
from ivr.web.helpers import action_url, answer, ext, flow, lane, param, public_base, small_int
from ivr.web.hook import hook
from ivr.web.live import desk

log = structlog.get_logger("ivr.transfer")
DESK_CONTEXT = b"ivr counsellor desk\x00"
DESK_NAME = re.compile(transfer.DESK + "[0-9a-f]{16}")
LANE_KEYS = frozenset({"p", "o", "l", "s", "u", "w", "f"})  # the partner and the lane, as in a wait URL


def desk_name(counsellor_id: str) -> str:
    """A counsellor's own queue: `desk-` and an HMAC of their id under the service's hash key (no id in Twilio)."""
    digest = hmac.new(ext("settings").hash_key, DESK_CONTEXT + counsellor_id.encode(), hashlib.sha256)
    return transfer.DESK + digest.hexdigest()[:16]


def leave_for_desk() -> Response | None:
    """At a wait round: a caller a counsellor took leaves the partner's queue (for their desk, see `after_queue`)."""
    if param("q").startswith(transfer.DESK) or desk() is None:
        return None
    r = VoiceResponse()
    r.leave()
    return answer(Step(r, "desk:leave"))


# A caller's first wait round in a queue: Twilio asks for the waitUrl as the caller joins, and a round lasts longer
# than this (reassurance, the hold sound, a pause). Later rounds in the same queue would note the same QueueSid.
FIRST_ROUND = 10


def noted_in_queue() -> None:
    """At a wait round: note the queue Twilio holds the caller in and their lane, for a move at once."""
    handover.waits_in(ext("store"), hook().sid, param("QueueSid"), urlencode({"p": param("p"), **lane().params}))


def move_now(took: handover.Claimed, desk: str) -> None:
    """Ask Twilio to move the caller a counsellor just took to that counsellor's desk now, not at their next wait
    round (up to about 20 s later); counted by what came of it (ivr_desk_moves_total)."""
    query: dict[str, Any] = {k: v for k, v in parse_qsl(took.record.get("lane", "")) if k in LANE_KEYS}
    url = public_base() + action_url("voice.desk", d=desk, q=took.queue, qt=int(took.waited), **query)
    result = handover.move(ext("settings"), took.record.get("queue_sid"), took.sid, url)
    ext("metrics").desk_moves.labels(result).inc()


def moved() -> Response:
    """/voice/desk: Twilio moved the caller out of the partner's queue at the counsellor's request: to the desk,
    as at a wait round (the URL is the service's own, signed by Twilio: a desk name that is not one puts the
    caller back at the front of the partner's line)."""
    store, desk = ext("store"), param("d")
    if not DESK_NAME.fullmatch(desk):
        return answer(transfer.back_from_desk(flow(), hook().instant, lane()))
    handover.arrived(store, hook().sid)
    store.left(param("q"), hook().sid)
    store.record(hook().sid, desk=desk)  # for the partner queue's action, if it comes after this request
    return answer(transfer.to_desk(flow(), lane(), desk, param("p"), small_int("qt", 0, 86400)))


def to_desk() -> Response | None:
    """The caller left the partner's queue for the desk of the counsellor who took them, at a wait round (leave) or
    moved by Twilio (redirected): no outcome is counted, they keep their place at the partner; None for any other
    queue outcome."""
    store, result = ext("store"), param("QueueResult").lower()
    if result == "leave":
        desk = handover.desk_of(store, hook().sid)
    elif result == "redirected" and not param("q").startswith(transfer.DESK):
        desk = handover.desk_of(store, hook().sid) or store.call(hook().sid).get("desk")
    else:
        return None
    if desk is None:
        return None
    handover.arrived(store, hook().sid)
    store.left(param("q"), hook().sid)
    return answer(transfer.to_desk(flow(), lane(), desk, param("p"), small_int("QueueTime", 0, 86400)))


def after_queue(result: str, rec: Mapping[str, str]) -> Response | None:
    """After a queue's outcome is counted (`rec`: the call's record as read for the count): back into line when the
    counsellor who took the caller missed them, or (after a bridge) what the counsellor decided. None: as any
    queue's outcome."""
    queue = param("q")
    if result in QUEUE_ANSWERED:
        if param("CallStatus").lower() == "completed":  # the caller hung up: nothing to say to anyone
            return None
        if rec.get("bridged") != "counsellors_line":  # taken otherwise: no transfer to wait for
            return None
        return decided(0, False)
    if queue.startswith(transfer.DESK) and result != "hangup":
        return answer(transfer.back_from_desk(flow(), hook().instant, lane()))
    return None


def decided(polls: int, told: bool) -> Response:
    """After the bridge: the counsellor's decision about this caller, acted on (a transfer counted once)."""
    store = ext("store")
    d = handover.decision(store, hook().sid)
    state, option, lang = (d.state, d.option, d.lang) if d else ("", "", "")
    here = lane()
    step = transfer.after_bridge(flow(), hook().instant, here, state, option, lang, polls, told)
    if step.decision.startswith(("transfer:", "transfer_failed:")):
        handover.taken(store, hook().sid)
        to = option if step.decision.startswith("transfer:") else flow().general
        ext("metrics").transfer(here.option, to)
        log.info("transfer", from_option=here.option, to_option=to,
                 result="chosen" if step.decision.startswith("transfer:") else "general_line")
    return answer(step)


def poll() -> Response:
    """/voice/transfer: look again for the counsellor's decision."""
    return decided(small_int("n", 0, 50), param("t", 1) == "1")
