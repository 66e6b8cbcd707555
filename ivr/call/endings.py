"""How a call ends when no person answers now: the closed message, the busy ending and the goodbye.

Neither ends in silence or a bare goodbye. Each gives, in the caller's language: the 110/119 notice, the phone lines
open now, the chat and mail consultations open now and how to find them, and (busy) an honest "please call again
later", with the hours that were least busy in the last campaign when its counts are there. At the busy ending the
caller may hear it all again, have it sent by SMS, or say something: a crisis expression puts them through to a person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from twilio.twiml.voice_response import VoiceResponse

from common.facts import JST
from ivr.call.speaking import Speaker, referral_name
from ivr.call.step import Adapters, Step
from menus import Line, Menu
from routing import Routing
from routing.model import Referral

QUIET_WIDTH = 3  # hours: "from 4 to 7" is something a caller can plan around
QUIET_MIN_CALLS = 100  # fewer calls in the whole campaign say nothing about when a caller gets through
QUIET_MIN_BLOCK = 10  # a block of hours with fewer calls than this is not judged


def quietest_hours(calls: dict[int, int], answered: dict[int, int]) -> tuple[int, int] | None:
    """The QUIET_WIDTH consecutive JST hours (across midnight too) in which the largest share of callers reached a
    person, as (start, end) on the 24-hour clock; None when there were too few calls to tell, or no hour's
    answered calls were counted."""
    if sum(calls.values()) < QUIET_MIN_CALLS or not any(answered.values()):
        return None

    def block(counts: dict[int, int], start: int) -> int:
        return sum(counts.get((start + i) % 24, 0) for i in range(QUIET_WIDTH))

    judged = [h for h in range(24) if block(calls, h) >= QUIET_MIN_BLOCK]
    if not judged:
        return None
    start = max(judged, key=lambda h: (block(answered, h) / block(calls, h), -h))
    return start, (start + QUIET_WIDTH) % 24


class Endings:
    """The closed message, the busy ending with its referral menu, and the goodbye, for one loaded config."""

    def __init__(self, menu: Menu, routing: Routing, adapters: Adapters, speaker: Speaker):
        self.menu = menu
        self.routing = routing
        self.io = adapters
        self.speaker = speaker
        self.speak = speaker.speak

    def lines_open(self, instant: dt.datetime, option: str, lang: str,
                   phones: Sequence[Referral] | None = None) -> tuple[Referral, ...]:
        """The phone lines (`phones` when the decision already has them) and the chat and mail consultations open
        at this instant for the option, for a caller in `lang`."""
        campaign = self.routing.window_at(instant)
        if phones is None:
            phones = self.routing.open_referrals(instant, option, campaign=campaign, language=lang)
        return (*phones, *self.routing.online_referrals(instant, option, campaign=campaign, language=lang))

    def goodbye_lines(self, lang: str, wording: str) -> list[Line]:
        """The last words of every ending: the 110/119 notice, then thanks for calling."""
        return [self.menu.line(lang, "emergency_short", wording), self.menu.line(lang, "goodbye", wording)]

    def later(self, lang: str, wording: str) -> list[Line]:
        """Please call again later, and the hours the last campaign was least busy when its counts say so."""
        out = [self.menu.line(lang, "try_later", wording)]
        quiet = self.io.quiet_hours()
        if quiet is not None:
            out.append(self.menu.line(lang, "quieter_hours", wording, start=str(quiet[0]), end=str(quiet[1])))
        return out

    def end(self, r: VoiceResponse, lang: str, wording: str, referrals: Sequence[Referral]) -> None:
        """After the lines were said once: the phone lines once more (the numbers matter), 110/119, goodbye."""
        lines = self.speaker.referral_lines(lang, wording, [x for x in referrals if not x.online])
        if lines:
            self.speak(r, [self.menu.line(lang, "repeat_referrals", wording), *lines])
        self.speak(r, self.goodbye_lines(lang, wording))
        r.hangup()

    # -- closed -------------------------------------------------------------------------------------------------
    def closed(self, instant: dt.datetime, option: str, langs: Sequence[str], wording: str | None = None) -> Step:
        """The closed message in each of `langs`: closed now, 110/119, when it opens next, the lines open now; then
        the phone lines again and goodbye."""
        d = self.routing.decide(instant, option, language=langs[0])
        m = self.menu
        lines = self.lines_open(instant, wording, langs[0]) if wording else self.lines_open(
            instant, d.option, langs[0], d.referrals)
        wording = wording or d.option
        r = VoiceResponse()
        for lang in langs:
            said = [m.line(lang, "closed", wording), m.line(lang, "emergency_short", wording)]
            nxt = d.next_campaign
            if nxt is None:
                said.append(m.line(lang, "next_unknown", wording))
            else:
                which = "next_open" if nxt.status == "confirmed" else "next_open_tentative"
                said.append(m.line(lang, which, wording, when=nxt.opens.astimezone(JST)))
            if lines:
                said += [m.line(lang, "now_open_lines", wording), *self.speaker.referral_lines(lang, wording, lines)]
            self.speak(r, said)
        self.end(r, langs[0], wording, lines)
        return Step(r, "closed", option=d.option, lang=langs[0], outcome="closed")

    # -- busy ---------------------------------------------------------------------------------------------------
    def busy(self, r: VoiceResponse, instant: dt.datetime, lang: str, params: dict[str, str | int],
             wording: str) -> None:
        """Every partner is busy or closed: sorry, the lines open now for the option the caller chose (`wording`:
        a child put through to the general line hears the children's lines), call again later, then the keys."""
        lines = self.lines_open(instant, wording, lang)
        self.referral_menu(r, lang, wording, lines, params, 1, [self.menu.line(lang, "all_busy", wording)])

    def referral_menu(self, r: VoiceResponse, lang: str, wording: str, lines: Sequence[Referral],
                      params: dict[str, str | int], n: int, intro: Sequence[Line] = ()) -> None:
        """The lines open now and when to call again, then: 1 to hear them again, 2 to get them by SMS (when it can
        be sent). Speech is listened to in the caller's language, for a crisis expression."""
        m = self.menu
        said = [*intro, *self.speaker.referral_lines(lang, wording, lines), *self.later(lang, wording)]
        if not lines:
            self.speak(r, said)
            self.speak(r, self.goodbye_lines(lang, wording))
            r.hangup()
            return
        keys = m.line(lang, "referral_keys_sms" if self.io.sms_possible() else "referral_keys", wording)
        action = self.io.url("voice.referrals", **params, n=n)
        spoken = m.language(lang)
        g = r.gather(input="dtmf speech", num_digits=1, timeout=m.spec.gather_timeout, action=action,
                     method="POST", action_on_empty_result=True, speech_timeout="auto",
                     language=spoken.listen or spoken.say)
        self.speak(g, [*said, keys])
        r.redirect(action, method="POST")

    def referrals(self, instant: dt.datetime, digits: str, option: str, lang: str, params: dict[str, str | int],
                  n: int, wording: str) -> Step:
        """The caller's key at the busy ending: hear it all again, get the lines by SMS, or goodbye."""
        m = self.menu
        lines = self.lines_open(instant, wording, lang)
        r = VoiceResponse()
        if digits == "1" and n < m.spec.max_tries:
            self.referral_menu(r, lang, wording, lines, params, n + 1)
            return Step(r, "referrals_again", option, lang)
        if digits == "2" and lines and self.io.sms_possible():
            sent = self.io.send_sms(self.sms_body(lang, wording, lines))
            self.speak(r, [m.line(lang, "sms_sent" if sent else "sms_failed", wording)])
            self.speak(r, self.goodbye_lines(lang, wording))
            r.hangup()
            return Step(r, "sms" if sent else "sms_failed", option, lang, record={"sms": int(sent)})
        self.speak(r, self.goodbye_lines(lang, wording))
        r.hangup()
        return Step(r, "goodbye", option, lang)

    def sms_body(self, lang: str, wording: str, lines: Sequence[Referral]) -> str:
        """The referral SMS, discreet, since it stays on a phone someone else may read: that it comes from the
        hotline, each phone line's number and each chat or mail consultation's address, named only for a line
        whose name tells nothing (`sms_named`; a DV or suicide line is listed by its number alone, and a chat or
        mail line whose address would name it is left out), and 110/119."""
        m = self.menu

        def entry(x: Referral) -> str:
            if not x.sms_named and x.online:
                return ""  # a web address names its line (inochinodenwa.org): an unnamed one is left out
            reach = x.number or x.url or ""
            return f"{m.text_of(lang, referral_name(x))}: {reach}".rstrip(": ") if x.sms_named else reach

        return "\n".join([m.line(lang, "sms_intro", wording).text, *filter(None, map(entry, lines)),
                          m.line(lang, "emergency_short", wording).text])

    # -- answered, or nothing left --------------------------------------------------------------------------------
    def goodbye(self, option: str, lang: str, result: str, wording: str) -> Step:
        """After a counsellor's call: thanks for calling."""
        r = VoiceResponse()
        self.speak(r, [self.menu.line(lang, "goodbye", wording)])
        r.hangup()
        return Step(r, result, option, lang, record={"result": result})

    def last_resort(self, general: str) -> str:
        """TwiML for when even the fallback failed: a 24-hour line and the emergency numbers, never silence."""
        r = VoiceResponse()
        always = [x for x in self.routing.spec.referrals if "all" in x.suits and not x.online][:1]
        for lang in ("ja", "en"):
            self.speak(r, [self.menu.line(lang, "all_busy"), *self.speaker.referral_lines(lang, general, always),
                           self.menu.line(lang, "emergency_short"), self.menu.line(lang, "try_later")])
        r.hangup()
        return str(r)
