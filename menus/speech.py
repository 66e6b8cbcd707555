"""Spoken answers at the menus: what a caller may say, the hints Twilio listens for, and what a reply chose."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from menus.schema import MenuFile, Option

KATAKANA = {code: code - 0x60 for code in range(0x30A1, 0x30F7)}  # ァ..ヶ -> ぁ..ゖ: a recogniser writes either


def normalize(text: str) -> str:
    """Spoken text for matching: width-folded, lower case, katakana as hiragana, without spaces or punctuation
    (letters, digits and the marks Thai and Devanagari vowels are written with are kept)."""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(KATAKANA)
    return "".join(ch for ch in folded if ch.isalnum() or unicodedata.category(ch).startswith("M"))


class Listener:
    """The menu file's spoken words, normalised once, and the rules that turn a reply into a choice."""

    def __init__(self, spec: MenuFile):
        self.spec = spec
        # what a caller may say, normalised once: option id -> words, language code -> words
        self._option_words = {oid: [normalize(w) for w in words] for oid, words in spec.speech.words.items()}
        self._language_words = {code: [normalize(w) for w in spec.languages[code].words]
                                for code in spec.language_keys.values() if code in spec.languages}
        # option id -> whether it is the foreign-language option; layouts in Menu's order, a later one's entry wins
        layouts = {"default": spec.options, **{name: lay.options for name, lay in spec.layouts.items()}}
        self._chooses_language = {o.id: o.choose_language for options in layouts.values() for o in options}
        self._crisis = {code: [w for w in map(normalize, words) if w] for code, words in spec.crisis.items()}

    def crisis(self, said: str, prefer: str) -> str | None:
        """The language of the crisis expression `said` contains (`prefer`'s own list first), whatever else it
        says; None when it contains none."""
        text = normalize(said)
        if not text:
            return None
        for code in (prefer, *self._crisis):
            if any(w in text for w in self._crisis.get(code, ())):
                return code
        return None

    def hints(self, *, options: bool) -> list[str]:
        """Words to pass as <Gather hints>: the options' and languages' words (top menu), or the languages'."""
        words = [w for o in self.spec.options for w in self.spec.speech.words.get(o.id, ())] if options else []
        words += [w for code in self.spec.language_keys.values() for w in self.spec.languages[code].words]
        return list(dict.fromkeys(words))

    def heard(self, said: str, options: Sequence[Option] | None) -> tuple[str, str] | None:
        """What a spoken answer chose among `options` (None: only a language may be chosen): ("option", id) or
        ("language", code); None when it names nothing, or more than one thing (never a guess)."""
        text = normalize(said)
        if not text:
            return None
        found: set[tuple[str, str]] = set()
        if options is not None:
            found |= {("option", o.id) for o in options if any(w in text for w in self._option_words.get(o.id, ()))}
        found |= {("language", code) for code, words in self._language_words.items() if any(w in text for w in words)}
        if len(found) == 2 and options is not None:  # a language named at the top menu is the foreign-language option
            kinds = dict(found)  # two options collapse to one key here: only an option beside a language counts
            if "language" in kinds and self._chooses_language.get(kinds.get("option", ""), False):
                found = {("language", kinds["language"])}
        return found.pop() if len(found) == 1 else None


__all__ = ["Listener", "normalize"]
