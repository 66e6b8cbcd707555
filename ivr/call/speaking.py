"""Saying lines on a call: recordings where the language has them, else its Twilio voice; phone numbers read as
telephone numbers; the referral lines by name in the caller's language."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from twilio.twiml import TwiML

from ivr.state.recordings import Recordings
from menus import Line, Menu, Named, Phone
from routing.model import Referral


def referral_name(r: Referral) -> Named:
    """A referral line's name in every language it has one (Japanese, English, and `names`), with its recording."""
    return Named(r.id, (("ja", r.name), ("en", r.name_en), *r.names.items()))


def clip_texts(menu: Menu, referrals: Sequence[Referral], lang: str) -> dict[str, str]:
    """Every clip a recorded language needs, with its words (the referral lines' names as a caller hears them)."""
    return menu.clips_needed(lang, {r.id: menu.text_of(lang, referral_name(r)) for r in referrals})


def missing_audio(menu: Menu, referrals: Sequence[Referral], recordings: Recordings) -> dict[str, list[str]]:
    """Recorded language -> the clips it needs that `recordings` (the clips found on disk) lacks."""
    return {code: sorted(clip for clip in clip_texts(menu, referrals, code) if (code, clip) not in recordings)
            for code, lang in menu.spec.languages.items() if lang.recorded}


def digit_by_digit(number: str) -> str:
    """'0120-279-338' -> '0 1 2 0, 2 7 9, 3 3 8': each digit on its own, the groups apart."""
    return ", ".join(" ".join(group) for group in number.split("-") if group)


class Speaker:
    """Puts a menu's lines into TwiML verbs, counting a recording that was expected but missing."""

    def __init__(self, menu: Menu, recordings: Recordings, audio_base: Callable[[], str],
                 audio_missing: Callable[[str, str], None]):
        self.menu = menu
        self.recordings = recordings
        self.audio_base = audio_base
        self.audio_missing = audio_missing

    def speak(self, node: TwiML, lines: Iterable[Line]) -> None:
        """Say (or play) each line, in order, into `node` (the response or a Gather)."""
        for line in lines:
            self._speak(node, line)

    def _speak(self, node: TwiML, line: Line) -> None:
        """Recordings where the language has them, else its voice; a recording that is expected but missing falls
        back to the voice, or to English where the language has none, and is counted."""
        lang = self.menu.language(line.lang)
        if lang.recorded:
            urls = self.recordings.find(line.lang, line.clips, self.audio_base) if line.clips else None
            if urls is not None:
                for url in urls:
                    node.play(url)
                return
            if lang.voice is None:
                self.audio_missing(line.lang, "en")
                line, lang = self.menu.again(line, "en"), self.menu.language("en")
            elif line.clips is not None and all((line.lang, c) in self.recordings for c in line.clips):
                self.audio_missing(line.lang, "same")  # recorded when the config was loaded, gone now
        if not lang.telephone:  # the voice cannot read a phone number: digit by digit, a pause between the groups
            node.say("".join(p if isinstance(p, str) else digit_by_digit(p.number) for p in line.parts),
                     voice=lang.voice, language=lang.say)
            return
        say = node.say(voice=lang.voice, language=lang.say)
        for part in line.parts:
            if isinstance(part, Phone):
                say.say_as(part.number, interpret_as="telephone")
            else:
                say.append(part)

    def referral_lines(self, lang: str, option: str, referrals: Sequence[Referral]) -> list[Line]:
        """One line per referral line, in the caller's language: a phone line's name and number; a chat or mail
        consultation's name and how to find it."""
        return [self.menu.line(lang, "referral", option, name=referral_name(r), number=Phone(r.number))
                if r.number else self.menu.line(lang, f"referral_{r.kind}", option, name=referral_name(r))
                for r in referrals]
