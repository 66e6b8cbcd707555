"""An honest busy line: at the first wait round, when the wait a caller faces (their place in line, at the rate the
partner's counsellors have been taking callers lately) is longer than the partner's maximum wait, they are told so
and offered the other lines open now at once (press 1), or to keep waiting. Nobody waits 15 minutes to learn there
was no chance.

The offer is a <Gather> inside the wait TwiML; its answer comes back to the wait URL (`h=1`). Pressing 1 speaks the
lines open now and when to call again, still in the queue (the verbs a wait URL allows), so a counsellor who becomes
free meanwhile still takes the caller; any other answer, or none, goes on waiting. The offer is made once per wait:
the call's record notes it (the wait URL is the same for every round of a wait, so it cannot carry that).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from twilio.twiml.voice_response import VoiceResponse

from ivr.call.lane import Lane
from ivr.call.step import Step

RATE_WINDOW = 15 * 60  # seconds of recent answering the rate is taken over
MIN_TAKEN = 2  # callers taken in the window below which the rate says nothing (the estimate is not spoken)
OFFER_TIMEOUT = 6  # seconds the caller has to press 1 after the offer
TOLD = "told"  # the call record's field naming the wait the offer was made in (partner:step)


def told_key(partner: str, lane: Lane) -> str:
    """One wait in a queue: the partner and the chain step the caller was put through at (a caller moved on to
    another partner waits anew, and may be told again there)."""
    return f"{partner}:{lane.step}"


def estimate(position: int, taken: int | None, window: int = RATE_WINDOW) -> int | None:
    """Seconds until a caller at `position` is likely answered, at `taken` callers answered in the last `window`
    seconds; None when the rate is unknown or too thin to say."""
    if taken is None or taken < MIN_TAKEN or position <= 0:
        return None
    return round(position * window / taken)


class Patience:
    """The honest offer and the caller's answer to it, for one call flow."""

    def __init__(self, flow: Any):
        self.flow = flow  # the call flow it speaks for (ivr.call.flow.Flow, which builds it)

    def offer(self, lane: Lane, partner: str, position: int, max_wait: int) -> Step | None:
        """The first wait round when the estimated wait is over `max_wait`: said, with 1 for the other lines now,
        then the hold sound; None when the estimate is within it or unknown, or when this wait was told already
        (an early answer brings the next round while the queue time is still short)."""
        wait = estimate(position, self.flow.io.handled(partner))
        if wait is None or wait <= max_wait:
            return None
        here = told_key(partner, lane)
        if self.flow.io.record().get(TOLD) == here:
            return None
        f, m, lang, words = self.flow, self.flow.menu, lane.lang, lane.words
        r = VoiceResponse()
        g = r.gather(input="dtmf", num_digits=1, timeout=OFFER_TIMEOUT, method="POST",
                     action=f.url("voice.wait", p=partner, h=1, **lane.params))
        f.speak(g, [m.line(lang, "wait_long", words, minutes=str(max(1, wait // 60)))])
        f._hold(r, 8)
        f.speak(r, [m.line(lang, "wait_short", words)])
        return Step(r, "wait_long", lane.option, lang, record={"told_wait": wait, TOLD: here})

    def choice(self, instant: dt.datetime, lane: Lane, digits: str) -> Step:
        """The caller's answer to the offer: 1 hears the lines open now and when to call again (still in line);
        anything else goes on waiting."""
        f, m, lang, words = self.flow, self.flow.menu, lane.lang, lane.words
        r = VoiceResponse()
        if digits == "1":
            lines = f.endings.lines_open(instant, words, lang)
            f.speak(r, [*f.speaker.referral_lines(lang, words, lines), *f.endings.later(lang, words),
                        m.line(lang, "wait_short", words)])
            f._hold(r, 4)
            return Step(r, "wait_referrals", lane.option, lang, outcome="referral", record={"wait_referrals": 1})
        f.speak(r, [m.line(lang, "wait_short", words)])
        f._hold(r, 8)
        return Step(r, "wait_kept", lane.option, lang)
