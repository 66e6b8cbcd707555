"""A caller's side of the counsellors' line beyond the partner's queue: over to the desk of the counsellor who took
them, and on to another option's line when the counsellor transfers them.

A counsellor takes the caller who has waited longest (ivr.state.handover) and hears that caller's details; the
caller leaves the partner's queue for that counsellor's own queue (the desk), moved there by Twilio at once or, when
that cannot be done, at their next wait round, and the counsellor's `<Dial><Queue>` bridges them there. When the
bridge ends, the caller's queue action asks what the counsellor decided: nothing yet (a short wait, then goodbye
as after any call), `pending` (the counsellor pressed `*` and is choosing: the caller holds, and is put through to
the general line if no choice comes), `ended` (goodbye), or an option and language: the caller hears that they are
being connected, in their language, and joins that option's chain on the urgent lane, taken first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from twilio.twiml import TwiML
from twilio.twiml.voice_response import VoiceResponse

from ivr.call.flow import Flow
from ivr.call.lane import Lane
from ivr.call.step import Step

DESK = "desk-"  # the start of a counsellor's own queue's name
QUIET_POLLS = 2  # one-second looks for the counsellor's decision before the call ends as after any conversation
HOLD_POLLS = 8  # looks while the counsellor chooses where to transfer (each a hold of HOLD_POLL s)
HOLD_POLL = 8


def hold(flow: Flow, node: TwiML, seconds: int) -> None:
    """The hold sound for about `seconds` (one play at least), or a pause where there is none."""
    url, length = flow.io.hold_url(), flow.io.hold_seconds()
    if url:
        node.play(url, loop=max(1, seconds // length))
    else:
        node.pause(length=seconds)


def to_desk(flow: Flow, lane: Lane, desk: str, partner: str, waited: int) -> Step:
    """Over to the desk of the counsellor who took this caller: the same lane, the same wait rounds; the action
    carries the `waited` seconds in the partner's queue, so the wait is counted whole."""
    r = VoiceResponse()
    params = lane.params
    # `q` on the waitUrl too: a caller already at a desk is never sent to one again (no claim to look up)
    r.enqueue(desk, wait_url=flow.url("voice.wait", p=partner, q=desk, **params), wait_url_method="POST",
              action=flow.url("voice.queue_done", q=desk, p=partner, qt=waited, **params), method="POST")
    return Step(r, f"desk:{partner}", lane.option, lane.lang)


def back_from_desk(flow: Flow, instant: dt.datetime, lane: Lane) -> Step:
    """The counsellor who took this caller did not bridge them: back to the same step of the chain, first in line."""
    step = flow.route(instant, replace(lane, urgent=True), announce=False)
    step.decision = f"desk_missed:{step.decision}"
    return step


def after_bridge(flow: Flow, instant: dt.datetime, lane: Lane, state: str, option: str, lang: str,
                 polls: int, told: bool) -> Step:
    """The caller's bridge to a counsellor ended: goodbye, hold for the counsellor's choice, or the chosen line.
    `state`: the counsellor's decision ('' for none recorded yet); `polls`: looks so far; `told`: "please hold"
    has been said."""
    if state == "to" and flow.menu.option(option) is not None:
        target = Lane(option, flow.menu.known_language(lang or lane.lang), urgent=True)
        step = flow.route(instant, target)
        step.decision = f"transfer:{lane.option}->{option}:{step.decision}"
        return step
    if state == "ended" or (not state and polls >= QUIET_POLLS):
        return flow.endings.goodbye(lane.option, lane.lang, "answered", lane.words)
    if (state == "pending" and polls >= HOLD_POLLS) or state not in ("", "pending"):
        # no choice came (the counsellor hung up mid-transfer, or the store failed): a person on the general line
        step = flow.route(instant, Lane(flow.general, lane.lang, urgent=True, wording=lane.wording))
        step.decision = f"transfer_failed:{lane.option}->{step.decision}"
        return step
    r = VoiceResponse()
    if state == "pending" and not told:
        flow.speak(r, [flow.menu.line(lane.lang, "connecting", lane.words)])
        told = True
    if state == "pending":
        hold(flow, r, HOLD_POLL)
    else:  # a second's look: the counsellor's side records its decision as soon as the bridge ends
        r.pause(length=1)
    r.redirect(flow.url("voice.transfer", n=polls + 1, t=int(told), **lane.params), method="POST")
    return Step(r, f"transfer_wait:{state or 'none'}", lane.option, lane.lang)
