"""The call flow: each webhook step turns (menu, routing, instant, parameters) into TwiML.

Everything the next step needs travels in the action URLs (option, language, chain step, tries), so a call never
depends on shared state to move on. `url(endpoint, **params)` builds those URLs; the web layer passes Flask's url_for.
TwiML is written by twilio's VoiceResponse; a first menu, which depends only on the config and the options offered,
is rendered once and its text answered again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace

from twilio.twiml import TwiML
from twilio.twiml.voice_response import VoiceResponse

from common.facts import DIAL_ANSWERED, HOME, QUEUE_ANSWERED
from ivr.call.endings import Endings
from ivr.call.lane import Lane
from ivr.call.patience import Patience
from ivr.call.speaking import Speaker
from ivr.call.step import Adapters, Heard, Step
from ivr.state.recordings import Recordings
from menus import Line, Menu
from routing import Routing
from routing.decide import URGENT

WAIT_ROUND = 20  # seconds of one wait round (words, then the hold sound); Twilio requests the waitUrl again after it
HONEST_AVERAGE = (90, 3600)  # an average queue time is spoken only in this range (seconds): short ones mean little
MAX_QUIET = 10  # seconds of silence at most, where there is no hold sound to play
URGENT_PATIENCE = 3  # a caller in crisis waits this many times a partner's max_wait before the next partner


class Flow:
    """The steps of a call, from the first webhook to the last, for one loaded config."""

    def __init__(self, menu: Menu, routing: Routing, adapters: Adapters, recordings: Recordings | None = None):
        self.menu = menu
        self.routing = routing
        self.io = adapters
        self.url = adapters.url
        self.general = menu.general
        self.recordings = recordings or Recordings(None, ())
        self.speaker = Speaker(menu, self.recordings, adapters.audio_base, adapters.audio_missing)
        self.speak = self.speaker.speak
        self.endings = Endings(menu, routing, adapters, self.speaker)
        self.closed = self.endings.closed
        self.patience = Patience(self)  # the honest busy line, at the first wait round
        self.foreign = next((o for o in menu.options if o.choose_language), None)
        self._foreign_id = self.foreign.id if self.foreign else None
        self._menus: dict[tuple[object, ...], str] = {}  # see _gather_once
        # speech recognition language and hints: the top menu (True) or the language choice (False)
        self._listen = {top: (menu.language(HOME if top else "en").say, ", ".join(menu.speech_hints(options=top)))
                        for top in (True, False)}

    # -- the top menu -----------------------------------------------------------------------------------------
    def _gather(self, endpoint: str, tries: int, lines: list[Line], **params: str | int) -> VoiceResponse:
        """Keys or speech: Japanese recognition at the top menu, English at the language choice (language names)."""
        r = VoiceResponse()
        action = self.url(endpoint, n=tries, **params)
        language, hints = self._listen[endpoint == "voice.menu"]
        g = r.gather(input="dtmf speech", num_digits=1, timeout=self.menu.spec.gather_timeout, action=action,
                     method="POST", action_on_empty_result=True, speech_timeout="auto", language=language, hints=hints)
        self.speak(g, lines)
        r.redirect(action, method="POST")  # reached only if Twilio skips the empty result: still no dead end
        return r

    def _gather_once(self, endpoint: str, instant: dt.datetime, lines: Callable[[], list[Line]],
                     *depends_on: object) -> str:
        """A first menu (tries=1) whose words depend only on `depends_on` and the config: made once per action URL,
        recordings' base URL, minute and `depends_on`, then the same TwiML is answered again (nothing changes a step's
        TwiML after the flow). Per minute, so a recording that went missing is noticed (and counted) within one."""
        key = (self.url(endpoint, n=1), self.io.audio_base(), instant.replace(second=0, microsecond=0), *depends_on)
        r = self._menus.get(key)
        if r is None:
            if len(self._menus) >= 256:  # a handful in practice: options offered per shift, layouts, URL prefixes
                self._menus.clear()
            r = self._menus[key] = str(self._gather(endpoint, 1, lines()))
        return r


    def offered(self, instant: dt.datetime) -> frozenset[str]:
        """The options the menu offers now: staffed ones, and the foreign-language one while anyone in its chain
        takes a caller in another language (its own partners, or an interpreter on the general line)."""
        return self.routing.offered(instant, self._foreign_id) - self.io.live().closed

    def incoming(self, instant: dt.datetime) -> Step:
        """A call comes in: the closed message, the menu of the options staffed now, or (nobody on shift) the
        general line."""
        campaign = self.routing.window_at(instant)
        if campaign is None:
            step = self.closed(instant, self.general, (HOME, "en"))
            step.record = {"campaign": "", "window": "closed"}
            return step
        offered = self.offered(instant)
        layout, said = campaign.menu, self.io.live().announcement  # an operator's, after the greeting
        if offered:
            menu = self._gather_once("voice.menu", instant, lambda: self.menu.top_menu(offered, layout, said), offered,
                                     layout, said)
            step = Step(menu, "menu")
        else:  # nobody on shift at all: greeting, 110/119, the announcement, then whatever the general line offers
            step = self.route(instant, Lane(self.general, HOME), preface=self.menu.opening(said))
        step.record = {**(step.record or {}), "campaign": campaign.id, "window": "open"}
        return step

    # -- a caller in crisis -------------------------------------------------------------------------------------
    def crisis(self, instant: dt.datetime, lang: str, wording: str | None = None) -> Step:
        """Words of suicidal crisis, said at any menu: one warm line, then a person at once, on the urgent lane (the
        campaign's urgent option when it has one; else, for a caller in another language, the foreign-language
        line's partners, then the general line's; else the general line's), taken first."""
        foreign = self._foreign_id if not self.menu.japanese(lang) else None
        option = self.routing.urgent_option(instant) or foreign or self.general
        lane = Lane(option, lang, 0, urgent=True, wording=wording)
        step = self.route(instant, lane, preface=[self.menu.line(lang, "crisis", lane.words)], announce=False)
        step.crisis = True
        step.decision = f"crisis:{step.decision}"
        # counted by the option chosen before, when there was one (an under-18 caller stays one)
        step.record = {**(step.record or {}), "crisis": 1, **({"option": option} if wording is None else {})}
        return step

    def _in_crisis(self, heard: Heard | None, prefer: str) -> str | None:
        """The language of a crisis expression in what the caller said, at any confidence; None for none."""
        return self.menu.crisis(heard.text, prefer) if heard is not None else None

    # -- the top menu -------------------------------------------------------------------------------------------
    def menu_choice(self, instant: dt.datetime, digits: str, tries: int, heard: Heard | None = None) -> Step:
        """The caller's key (or words) at the top menu: an option, the language choice, a repeat, or a retry."""
        m = self.menu
        if not digits and (said := self._in_crisis(heard, HOME)):
            return self.crisis(instant, said)
        offered = self.offered(instant)
        campaign = self.routing.window_at(instant)
        layout = campaign.menu if campaign else "default"
        if not digits and heard is not None:
            return self._spoken_menu(instant, heard, tries, offered, layout)
        if digits == m.repeat_key(layout):
            return Step(self._gather("voice.menu", tries, m.options_menu(offered, layout)), "repeat")
        option = m.option_for_key(digits, layout)
        if option is not None and option.id not in offered and campaign is not None:
            # The option is not staffed at this hour (or not part of this campaign): say so, then the general line,
            # in the chosen option's own wording (plain words for an under-18 caller).
            explain = [m.line(HOME, "option_closed", option.id)]
            if option.choose_language:
                explain += [m.line("en", "option_closed"), m.line("en", "emergency_short")]
            # an urgent option (closed by an operator, or unstaffed) keeps its callers on the urgent lane
            urgent = self.routing.option_urgent(instant, option.id)
            step = self.route(instant, Lane(self.general, HOME, urgent=urgent, wording=option.id), preface=explain)
            step.record = {**(step.record or {}), "option": self.general, "asked": option.id}
            step.decision = f"closed_option:{option.id}->{step.decision}"
            return step
        if option is not None:
            if option.choose_language:
                menu = self._gather_once("voice.language", instant, m.language_menu)
                step = Step(menu, "language_menu", option=option.id)
            else:
                step = self.route(instant, Lane(option.id, HOME))
            step.record = {**(step.record or {}), "option": option.id}
            return step
        return self._bad_menu_input(instant, "empty" if not digits else "wrong", tries, offered, layout)

    def _bad_menu_input(self, instant: dt.datetime, problem: str, tries: int, offered: frozenset[str],
                        layout: str) -> Step:
        m = self.menu
        said = m.line(HOME, {"empty": "no_input", "wrong": "invalid"}.get(problem, "speech_unclear"))
        if tries >= m.spec.max_tries:
            step = self.route(instant, Lane(self.general, HOME), preface=[said, m.line(HOME, "to_general")])
            step.record = {**(step.record or {}), "option": self.general, "menu": "gave_up"}
        else:
            step = Step(self._gather("voice.menu", tries + 1, [said, *m.options_menu(offered, layout)]), "retry")
        step.bad_input = problem
        return step

    def _spoken_menu(self, instant: dt.datetime, heard: Heard, tries: int, offered: frozenset[str],
                     layout: str) -> Step:
        """A spoken answer at the top menu: an option, or a language (the foreign-language line in it). Sure enough:
        as if its key was pressed. Unsure: asked to press the key. Nothing or several things named: asked again."""
        m = self.menu
        match = m.heard(heard.text, options=True, layout=layout)
        foreign = self.foreign
        if match is None:
            return self._bad_menu_input(instant, "unclear", tries, offered, layout)
        kind, value = match
        sure = heard.confidence >= m.spec.speech.confidence
        if kind == "option":
            key = next((o.key for o in m.options_menu_options(layout) if o.id == value), None)
            if key is None:
                return self._bad_menu_input(instant, "unclear", tries, offered, layout)
            if sure:
                return self.menu_choice(instant, key, tries)
            check = [m.line(HOME, "speech_check"),
                     m.line(HOME, "option_line", value, key=key, label=m.line(HOME, f"label.{value}"))]
            step = Step(self._gather("voice.menu", tries + 1, check), "speech_check", option=value)
            step.bad_input = "unsure"
            return step
        lang_key = m.key_of_language(value)
        if foreign is None or lang_key is None:
            return self._bad_menu_input(instant, "unclear", tries, offered, layout)
        if foreign.id not in offered:  # the foreign-language line is not open now: as its key would be answered
            return self.menu_choice(instant, foreign.key, tries)
        if sure:
            step = self.language_choice(instant, lang_key, 1)
            step.record = {**(step.record or {}), "option": foreign.id}
            return step
        check = [m.line(HOME, "speech_check"), m.line(value, "announce", key=lang_key)]
        step = Step(self._gather("voice.language", 1, check), "speech_check", option=foreign.id, lang=value)
        step.record = {"option": foreign.id}
        step.bad_input = "unsure"
        return step

    def language_choice(self, instant: dt.datetime, digits: str, tries: int, heard: Heard | None = None) -> Step:
        """The caller's key (or words) at the language choice: the 110/119 notice in that language, then the
        foreign-language line in it."""
        m = self.menu
        foreign = self._foreign_id or self.general
        if not digits and (said := self._in_crisis(heard, "en")):
            return self.crisis(instant, said)
        lang = m.language_for_key(digits)
        if not digits and heard is not None:
            match = m.heard(heard.text, options=False)
            if match is not None and heard.confidence >= m.spec.speech.confidence:
                lang = match[1]
            elif match is not None:  # unsure: the language's own line, "for <language>, press <key>"
                code = match[1]
                check = [m.line(code, "announce", key=m.key_of_language(code) or "")]
                step = Step(self._gather("voice.language", tries + 1, check), "speech_check", option=foreign,
                            lang=code)
                step.bad_input = "unsure"
                return step
        gave_up = lang is None and not (digits and digits == m.repeat_key()) and tries >= m.spec.max_tries
        if gave_up:  # they asked for another language: English is the likeliest shared one at this line
            lang = "en"
        if lang is not None:
            told = [m.line(lang, "emergency_short", foreign), *m.announcement(lang, self.io.live().announcement)]
            step = self.route(instant, Lane(foreign, lang), preface=told)
            step.record = {**(step.record or {}), "option": foreign, "lang": lang, **({"menu": "gave_up"}
                                                                                      if gave_up else {})}
        elif digits and digits == m.repeat_key():
            return Step(self._gather("voice.language", tries, m.language_menu()), "repeat", option=foreign)
        else:
            retry = [m.line(HOME, "language_retry"), m.line("en", "language_retry"), *m.language_menu()[1:]]
            step = Step(self._gather("voice.language", tries + 1, retry), "retry", option=foreign)
        if gave_up or lang is None:
            step.bad_input = "unclear" if not digits and heard is not None else "empty" if not digits else "wrong"
        return step

    # -- routing to a person ------------------------------------------------------------------------------------
    def route(self, instant: dt.datetime, lane: Lane, preface: Sequence[Line] = (), announce: bool = True) -> Step:
        """Put the caller through to the chain's partner at the lane's step (skipping partners at their cap, except
        on the urgent lane when every one is full: a caller in crisis waits for a person), or to the lines open
        now. `announce`: say that they are being connected (unless the preface said so)."""
        option, lang = lane.option, lane.lang
        live = replace(self.io.live(), first=lane.first)  # paused partners are stepped over, closed options shut
        d = first = self.routing.decide(instant, option, lane.step, lang, urgent=lane.urgent, live=live)
        while d.partner is not None and d.partner.capacity is not None and not self.io.take_place(d.partner):
            d = self.routing.decide(instant, option, d.step + 1, lang, urgent=lane.urgent, live=live)  # at its cap
        if lane.urgent and d.partner is None and first.partner is not None:
            d = first
        step = d.step
        lane = replace(lane, option=d.option, step=step, first=d.first)
        words = lane.words
        if d.kind == "closed":  # the window closed while the caller was in the menu
            s = self.closed(instant, d.option, (lang,) if lang != HOME else (HOME, "en"), lane.wording)
            s.lang = lang
            return s
        r = VoiceResponse()
        self.speak(r, preface)
        if d.partner is None:  # the chain is exhausted: the lines open now, and when to call again
            self.endings.busy(r, instant, lang, lane.params, words)
            return Step(r, "referrals", d.option, lang, outcome="referral",
                        record={"route": "referrals", "step": step})
        p = d.partner
        through = d.interpreter and not self.menu.japanese(lang)  # plain Japanese needs no interpreter
        said = "connecting_interpreter" if through else "connecting" if step == 0 else "overflow"
        if announce or through:
            self.speak(r, [self.menu.line(lang, said, words)])
        queue = p.contact + (URGENT if d.urgent else "") if p.kind == "queue" else ""
        params = lane.params
        if p.kind == "queue":
            r.enqueue(queue, wait_url=self.url("voice.wait", p=p.id, **params), wait_url_method="POST",
                      action=self.url("voice.queue_done", q=queue, p=p.id, **params), method="POST")
            self.io.joined(queue)
        else:
            dial = r.dial(timeout=p.ring_timeout, action=self.url("voice.dial_done", p=p.id, **params), method="POST",
                          caller_id=self.io.line_number())
            dial.number(p.contact)
        first_kind = "queued" if p.kind == "queue" else "dialled"
        return Step(r, f"{p.kind}:{p.id}", d.option, lang, outcome=first_kind if step == 0 else "overflowed",
                    record={"route": p.kind, "partner": p.id, "step": step, "queue": queue,
                            "routed": int(instant.timestamp())})  # talk time = queue-done - routed - QueueTime

    def _hold(self, node: TwiML, seconds: int) -> None:
        """The hold sound for about `seconds` (never silence on a phone line: it sounds like a dropped call); short
        pauses where no hold sound is available."""
        url = self.io.hold_url()
        length = self.io.hold_seconds()
        loops = seconds // length if url else 0
        if loops:
            node.play(url, loop=loops)
        rest = seconds - loops * length  # shorter than the sound: keeps the round to the second
        if rest > 0:
            node.pause(length=min(rest, MAX_QUIET))

    def wait(self, lane: Lane, partner: str, queue_time: int, position: int, average: int) -> Step:
        """One round of waiting: where the caller is in line, an honest average when there is one, reassurance
        between the hold sound; past the partner's maximum wait, <Leave> so the action sends the caller on. A caller
        on the urgent lane (in crisis) stays first in line URGENT_PATIENCE times as long before being sent on."""
        option, lang, words = lane.option, lane.lang, lane.words
        p = self.routing.partners.get(partner)
        max_wait = p.max_wait if p else 300
        if lane.urgent:
            max_wait *= URGENT_PATIENCE
        r = VoiceResponse()
        if queue_time >= max_wait or partner in self.io.live().paused:  # paused: moved on, not dropped
            r.leave()
            return Step(r, "rollover", option, lang)
        if self.estimates(queue_time, lane) and (told := self.patience.offer(lane, partner, position, max_wait)):
            return told
        m = self.menu
        lines = [m.line(lang, "wait", words)] if queue_time < WAIT_ROUND else []
        if position > 0:
            lines.append(m.line(lang, "wait_position", words, position=str(position)))
        if HONEST_AVERAGE[0] <= average <= HONEST_AVERAGE[1]:
            lines.append(m.line(lang, "wait_average", words, minutes=str(round(average / 60))))
        self.speak(r, lines)
        left = max_wait - queue_time  # the next request comes at the maximum wait, not a round later
        first = max(1, min(WAIT_ROUND // 2, left // 2))
        self._hold(r, first)
        self.speak(r, [m.line(lang, "wait_short", words)])
        self._hold(r, max(1, min(WAIT_ROUND // 2, left - first)))
        return Step(r, "wait", option, lang)

    @staticmethod
    def estimates(queue_time: int, lane: Lane) -> bool:
        """Whether this wait round may offer an honest estimate (ivr.call.patience): the first round, off the urgent
        lane (a caller in crisis is never told to wait long)."""
        return queue_time < WAIT_ROUND and not lane.urgent

    def queue_done(self, instant: dt.datetime, result: str, lane: Lane) -> Step:
        """After a partner's queue: goodbye when answered, nothing when the caller hung up, else the chain's next."""
        if result in QUEUE_ANSWERED:
            return self.endings.goodbye(lane.option, lane.lang, "answered", lane.words)
        if result == "hangup":
            r = VoiceResponse()
            r.hangup()
            return Step(r, "caller_hung_up", lane.option, lane.lang, record={"result": "abandoned"})
        # leave (rolled over), queue-full, error, system-error, or anything unknown: the next step of the chain
        return self.route(instant, replace(lane, step=lane.step + 1))

    def dial_done(self, instant: dt.datetime, status: str, lane: Lane) -> Step:
        """After a dial to a phone partner: goodbye when answered, else the next in the chain."""
        if status in DIAL_ANSWERED:
            return self.endings.goodbye(lane.option, lane.lang, "answered", lane.words)
        return self.route(instant, replace(lane, step=lane.step + 1))

    def referrals(self, instant: dt.datetime, digits: str, lane: Lane, n: int, heard: Heard | None = None) -> Step:
        """The caller's answer at the busy ending: a crisis expression puts them through to a person; any other
        words are taken as a wish to hear it again; else the keys (again, SMS) or goodbye."""
        if not digits and self._in_crisis(heard, lane.lang):
            return self.crisis(instant, lane.lang, lane.words)
        if not digits and heard is not None:
            digits = "1"
        return self.endings.referrals(instant, digits, lane.option, lane.lang, lane.params, n, lane.words)

    def fallback(self, instant: dt.datetime) -> Step:
        """Twilio's fallback URL: straight to the general line, or the closed message, from boot-time config."""
        if self.routing.window_at(instant) is None:
            return self.closed(instant, self.general, (HOME, "en"))
        step = self.route(instant, Lane(self.general, HOME), preface=[self.menu.line(HOME, "fallback")])
        step.decision, step.outcome = f"fallback:{step.decision}", "fallback"
        return step

    def wait_safe(self) -> str:
        """A wait round that needs nothing but the boot config: for when building the real one failed."""
        r = VoiceResponse()
        self.speak(r, [self.menu.line(HOME, "wait")])
        self._hold(r, WAIT_ROUND // 2)
        return str(r)

    def last_resort(self) -> str:
        """TwiML for when even the fallback failed: a 24-hour line and the emergency numbers, never silence."""
        return self.endings.last_resort(self.general)
