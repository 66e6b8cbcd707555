"""The call flow: each webhook step turns (menu, routing, instant, parameters) into TwiML.

Everything the next step needs travels in the action URLs (option, language, chain step, tries), so a call never
depends on shared state to move on. `url(endpoint, **params)` builds those URLs; the web layer passes Flask's url_for.
TwiML is written by twilio's VoiceResponse; a first menu, which depends only on the config and the options offered,
is rendered once and its text answered again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from twilio.twiml.voice_response import VoiceResponse

from common.facts import DIAL_ANSWERED, HOME, QUEUE_ANSWERED
from ivr.call.speaking import Speaker, referral_name
from ivr.call.step import Adapters, Heard, Step
from ivr.state.recordings import Recordings
from menus import Line, Menu
from routing import Routing
from routing.decide import URGENT
from routing.model import Referral

WAIT_ROUND = 20  # seconds of one wait round (words, then quiet); Twilio requests the waitUrl again after it
HONEST_AVERAGE = (90, 3600)  # an average queue time is spoken only in this range (seconds): short ones mean little


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
        self.referral_lines = self.speaker.referral_lines
        self.foreign = next((o for o in menu.options if o.choose_language), None)
        self._menus: dict[tuple[object, ...], str] = {}  # see _gather_once
        # speech recognition language and hints: the top menu (True) or the language choice (False)
        self._listen = {top: (menu.language(HOME if top else "en").say, ", ".join(menu.speech_hints(options=top)))
                        for top in (True, False)}

    def _end(self, r: VoiceResponse, lang: str, option: str, referrals: Sequence[Referral]) -> None:
        """After the referral lines were said once: once more (the numbers matter), the emergency numbers, goodbye."""
        lines = self.referral_lines(lang, option, referrals)
        if lines:
            self.speak(r, [self.menu.line(lang, "repeat_referrals", option), *lines])
        self.speak(r, [self.menu.line(lang, "emergency_short", option), self.menu.line(lang, "goodbye", option)])
        r.hangup()

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

    def incoming(self, instant: dt.datetime) -> Step:
        """A call comes in: the closed message, the menu of the options staffed now, or (nobody on shift) the
        general line."""
        campaign = self.routing.window_at(instant)
        if campaign is None:
            step = self.closed(instant, self.general, (HOME, "en"))
            step.record = {"campaign": "", "window": "closed"}
            return step
        offered = self.routing.offered(instant)
        if offered:
            layout = campaign.menu
            menu = self._gather_once("voice.menu", instant, lambda: self.menu.top_menu(offered, layout), offered,
                                     layout)
            step = Step(menu, "menu")
        else:  # nobody on shift at all: straight to whatever the general line can still offer
            step = self.route(instant, self.general, HOME, 0, preface=self.menu.top_menu(offered)[:2])
        step.record = {**(step.record or {}), "campaign": campaign.id, "window": "open"}
        return step

    def closed(self, instant: dt.datetime, option: str, langs: Sequence[str]) -> Step:
        """The closed message in each of `langs`, the lines open now, then goodbye."""
        d = self.routing.decide(instant, option, language=langs[0])
        r = VoiceResponse()
        for lang in langs:
            self.speak(r, self.speaker.closed_lines(d, lang))
            self.speak(r, self.referral_lines(lang, option, d.referrals))
        self._end(r, langs[0], option, d.referrals)
        return Step(r, "closed", option=option, lang=langs[0], outcome="closed")

    def menu_choice(self, instant: dt.datetime, digits: str, tries: int, heard: Heard | None = None) -> Step:
        """The caller's key (or words) at the top menu: an option, the language choice, a repeat, or a retry."""
        m = self.menu
        offered = self.routing.offered(instant)
        campaign = self.routing.window_at(instant)
        layout = campaign.menu if campaign else "default"
        if not digits and heard is not None:
            return self._spoken_menu(instant, heard, tries, offered, layout)
        if digits == m.repeat_key(layout):
            return Step(self._gather("voice.menu", tries, m.options_menu(offered, layout)), "repeat")
        option = m.option_for_key(digits, layout)
        if option is not None and option.id not in offered and campaign is not None:
            # The option is not staffed at this hour (or not part of this campaign): say so, then the general line.
            explain = [m.line(HOME, "option_closed", option.id)]
            if option.choose_language:
                explain.append(m.line("en", "option_closed"))
            step = self.route(instant, self.general, HOME, 0, preface=explain)
            step.record = {**(step.record or {}), "option": self.general, "asked": option.id}
            step.decision = f"closed_option:{option.id}->{step.decision}"
            return step
        if option is not None:
            if option.choose_language:
                menu = self._gather_once("voice.language", instant, m.language_menu)
                step = Step(menu, "language_menu", option=option.id)
            else:
                step = self.route(instant, option.id, HOME, 0)
            step.record = {**(step.record or {}), "option": option.id}
            return step
        return self._bad_menu_input(instant, "empty" if not digits else "wrong", tries, offered, layout)

    def _bad_menu_input(self, instant: dt.datetime, problem: str, tries: int, offered: frozenset[str],
                        layout: str) -> Step:
        m = self.menu
        said = m.line(HOME, {"empty": "no_input", "wrong": "invalid"}.get(problem, "speech_unclear"))
        if tries >= m.spec.max_tries:
            step = self.route(instant, self.general, HOME, 0, preface=[said, m.line(HOME, "to_general")])
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
        """The caller's key (or words) at the language choice: the foreign-language line in that language."""
        m = self.menu
        foreign = self.foreign.id if self.foreign else self.general
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
        if lang is not None:
            step = self.route(instant, foreign, lang, 0)
            step.record = {**(step.record or {}), "option": foreign, "lang": lang}
            return step
        if digits and digits == m.repeat_key():
            return Step(self._gather("voice.language", tries, m.language_menu()), "repeat", option=foreign)
        problem = "unclear" if not digits and heard is not None else "empty" if not digits else "wrong"
        if tries >= m.spec.max_tries:
            # They asked for another language: English is the likeliest shared one at the foreign-language line.
            step = self.route(instant, foreign, "en", 0)
            step.record = {**(step.record or {}), "option": foreign, "lang": "en", "menu": "gave_up"}
        else:
            retry = [m.line(HOME, "language_retry"), m.line("en", "language_retry"), *m.language_menu()[1:]]
            step = Step(self._gather("voice.language", tries + 1, retry), "retry", option=foreign)
        step.bad_input = problem
        return step

    # -- routing to a person ----------------------------------------------------------------------------------
    def route(self, instant: dt.datetime, option: str, lang: str, step: int, preface: Sequence[Line] = ()) -> Step:
        """Put the caller through to the chain's partner at `step` (skipping partners at their cap), or to the lines
        open now."""
        d = self.routing.decide(instant, option, step, lang)
        while d.partner is not None and d.partner.capacity is not None and not self.io.take_place(d.partner):
            step += 1  # at its cap: the next in the chain
            d = self.routing.decide(instant, option, step, lang)
        option = d.option
        if d.kind == "closed":  # the window closed while the caller was in the menu
            s = self.closed(instant, option, (lang,) if lang != HOME else (HOME, "en"))
            s.lang = lang
            return s
        r = VoiceResponse()
        self.speak(r, preface)
        params = {"o": option, "l": lang, "s": step}
        if d.partner is None:  # the chain is exhausted: referral lines open now
            self._referral_menu(r, lang, option, d.referrals, step, 1, [self.menu.line(lang, "all_busy", option)])
            return Step(r, "referrals", option, lang, outcome="referral",
                        record={"route": "referrals", "step": step})
        p = d.partner
        self.speak(r, [self.menu.line(lang, "connecting" if step == 0 else "overflow", option)])
        queue = p.contact + (URGENT if d.urgent else "") if p.kind == "queue" else ""
        if p.kind == "queue":
            r.enqueue(queue, wait_url=self.url("voice.wait", p=p.id, **params), wait_url_method="POST",
                      action=self.url("voice.queue_done", q=queue, p=p.id, **params), method="POST")
            self.io.joined(queue)
        else:
            dial = r.dial(timeout=p.ring_timeout, action=self.url("voice.dial_done", p=p.id, **params), method="POST",
                          caller_id=self.io.line_number())
            dial.number(p.contact)
        first = "queued" if p.kind == "queue" else "dialled"
        return Step(r, f"{p.kind}:{p.id}", option, lang, outcome=first if step == 0 else "overflowed",
                    record={"route": p.kind, "partner": p.id, "step": step,
                            "queue": queue})

    def _referral_menu(self, r: VoiceResponse, lang: str, option: str, referrals: Sequence[Referral], step: int,
                       n: int, intro: Sequence[Line] = ()) -> None:
        """The referral lines open now, then: 1 to hear them again, 2 to get them by SMS (when it can be sent)."""
        lines = self.referral_lines(lang, option, referrals)
        if not lines:
            self.speak(r, intro)
            self._end(r, lang, option, ())
            return
        keys = self.menu.line(lang, "referral_keys_sms" if self.io.sms_possible() else "referral_keys", option)
        action = self.url("voice.referrals", o=option, l=lang, s=step, n=n)
        g = r.gather(input="dtmf", num_digits=1, timeout=self.menu.spec.gather_timeout, action=action,
                     method="POST", action_on_empty_result=True)
        self.speak(g, [*intro, *lines, keys])
        r.redirect(action, method="POST")

    def referrals(self, instant: dt.datetime, digits: str, option: str, lang: str, step: int, n: int) -> Step:
        """The caller's answer at the end of the chain: hear the lines again, get them by SMS, or goodbye."""
        campaign = self.routing.window_at(instant)
        refs = self.routing.open_referrals(instant, option, campaign=campaign, language=lang)
        r = VoiceResponse()
        m = self.menu
        if digits == "1" and n < self.menu.spec.max_tries:
            self._referral_menu(r, lang, option, refs, step, n + 1)
            return Step(r, "referrals_again", option, lang)
        if digits == "2" and refs and self.io.sms_possible():
            body = "\n".join([m.line(lang, "sms_intro", option).text,
                               *(f"{m.text_of(lang, referral_name(x))}: {x.number}" for x in refs),
                               m.line(lang, "emergency_short", option).text])
            sent = self.io.send_sms(body)
            self.speak(r, [m.line(lang, "sms_sent" if sent else "sms_failed", option)])
            self.speak(r, [m.line(lang, "emergency_short", option), m.line(lang, "goodbye", option)])
            r.hangup()
            return Step(r, "sms" if sent else "sms_failed", option, lang, record={"sms": int(sent)})
        self.speak(r, [m.line(lang, "emergency_short", option), m.line(lang, "goodbye", option)])
        r.hangup()
        return Step(r, "goodbye", option, lang)

    def wait(self, option: str, lang: str, partner: str, queue_time: int, position: int, average: int) -> Step:
        """One round of waiting: where the caller is in line, an honest average when there is one, reassurance,
        short pauses; past the partner's maximum wait, <Leave> so the action sends the caller down the chain."""
        p = self.routing.partners.get(partner)
        max_wait = p.max_wait if p else 300
        r = VoiceResponse()
        if queue_time >= max_wait:
            r.leave()
            return Step(r, "rollover", option, lang)
        m = self.menu
        lines = [m.line(lang, "wait", option)] if queue_time < WAIT_ROUND else []
        if position > 0:
            lines.append(m.line(lang, "wait_position", option, position=str(position)))
        if HONEST_AVERAGE[0] <= average <= HONEST_AVERAGE[1]:
            lines.append(m.line(lang, "wait_average", option, minutes=str(round(average / 60))))
        self.speak(r, lines)
        left = max_wait - queue_time  # the next request comes at the maximum wait, not a round later
        first = max(1, min(WAIT_ROUND // 2, left // 2))
        r.pause(length=first)
        self.speak(r, [m.line(lang, "wait_short", option)])
        r.pause(length=max(1, min(WAIT_ROUND // 2, left - first)))
        return Step(r, "wait", option, lang)

    def queue_done(self, instant: dt.datetime, result: str, option: str, lang: str, step: int) -> Step:
        """After a partner's queue: goodbye when answered, nothing when the caller hung up, else the chain's next."""
        if result in QUEUE_ANSWERED:
            return self._goodbye(option, lang, "answered")
        if result == "hangup":
            r = VoiceResponse()
            r.hangup()
            return Step(r, "caller_hung_up", option, lang, record={"result": "abandoned"})
        # leave (rolled over), queue-full, error, system-error, or anything unknown: the next step of the chain
        return self.route(instant, option, lang, step + 1)

    def dial_done(self, instant: dt.datetime, status: str, option: str, lang: str, step: int) -> Step:
        """After a dial to a phone partner: goodbye when answered, else the next in the chain."""
        if status in DIAL_ANSWERED:
            return self._goodbye(option, lang, "answered")
        return self.route(instant, option, lang, step + 1)

    def _goodbye(self, option: str, lang: str, result: str) -> Step:
        r = VoiceResponse()
        self.speak(r, [self.menu.line(lang, "goodbye", option)])
        r.hangup()
        return Step(r, result, option, lang, record={"result": result})

    def fallback(self, instant: dt.datetime) -> Step:
        """Twilio's fallback URL: straight to the general line, or the closed message, from boot-time config."""
        if self.routing.window_at(instant) is None:
            return self.closed(instant, self.general, (HOME, "en"))
        step = self.route(instant, self.general, HOME, 0, preface=[self.menu.line(HOME, "fallback")])
        step.decision, step.outcome = f"fallback:{step.decision}", "fallback"
        return step

    def wait_safe(self) -> str:
        """A wait round that needs nothing but the boot config: for when building the real one failed."""
        r = VoiceResponse()
        self.speak(r, [self.menu.line(HOME, "wait")])
        r.pause(length=WAIT_ROUND // 2)
        return str(r)

    def last_resort(self) -> str:
        """TwiML for when even the fallback failed: a 24-hour line and the emergency numbers, never silence."""
        r = VoiceResponse()
        always = [x for x in self.routing.spec.referrals if "all" in x.suits][:1]
        for lang in (HOME, "en"):
            self.speak(r, [self.menu.line(lang, "all_busy"), *self.referral_lines(lang, self.general, always),
                           self.menu.line(lang, "emergency_short")])
        r.hangup()
        return str(r)
