"""The menu a call walks through: a validated menu file's lookups, and its prompts assembled into spoken lines."""

from __future__ import annotations

import datetime as dt
import string
from pathlib import Path

from common.configfile import ConfigError, load_model
from common.facts import HOME
from menus.lines import KEY_CLIPS, NUMBER_CLIPS, WORDED, Line, Named, Phone, Value, number_clips, pieces, spoken_when
from menus.schema import WHEN_KEYS, Language, MenuFile, Option, check
from menus.speech import Listener

DEFAULT_FILE = Path(__file__).with_name("menu.yaml")


class Menu:
    """A validated menu file with the lookups a call needs."""

    def __init__(self, spec: MenuFile, source: str = "<memory>"):
        self.spec = spec
        self.source = source
        self.options = tuple(spec.options)
        self.general = spec.options[0].id
        self._layouts = {"default": (self.options, spec.repeat_key)}
        self._layouts.update({name: (tuple(lay.options), lay.repeat_key) for name, lay in spec.layouts.items()})
        self._by_key = {name: {o.key: o for o in opts} for name, (opts, _) in self._layouts.items()}
        self._by_id = {o.id: o for opts, _ in self._layouts.values() for o in opts}
        self._listener = Listener(spec)

    @property
    def layouts(self) -> dict[str, frozenset[str]]:
        """Layout name -> its option ids."""
        return {name: frozenset(o.id for o in opts) for name, (opts, _) in self._layouts.items()}

    @property
    def all_option_ids(self) -> tuple[str, ...]:
        """Every option id of every layout, each once."""
        return tuple(self._by_id)

    @property
    def announcement_ids(self) -> tuple[str, ...]:
        """The prepared announcements an operator may play after the greeting."""
        return tuple(self.spec.announcements)

    def announcement(self, lang: str, ident: str | None) -> list[Line]:
        """The announcement `ident` in `lang` (none for no announcement, or one this file does not prepare)."""
        return [self.line(lang, f"announcement.{ident}")] if ident in self.spec.announcements else []

    def repeat_key(self, layout: str = "default") -> str:
        """The key that repeats the menu in this layout."""
        return self._layouts.get(layout, self._layouts["default"])[1]

    # -- keys -------------------------------------------------------------------------------------------------
    def option_for_key(self, digits: str, layout: str = "default") -> Option | None:
        """The option a pressed key chooses in this layout; None for a key that chooses nothing."""
        return self._by_key.get(layout, self._by_key["default"]).get(digits)

    def option(self, option_id: str) -> Option | None:
        """The option with this id in any layout."""
        return self._by_id.get(option_id)

    def language_for_key(self, digits: str) -> str | None:
        """The language a key chooses at the language menu; None for a key that chooses none."""
        return self.spec.language_keys.get(digits)

    def language(self, code: str) -> Language:
        """How a language is spoken and heard; Japanese for a code the file does not know."""
        return self.spec.languages.get(code) or self.spec.languages[HOME]

    def known_language(self, code: str | None) -> str:
        """The code itself when the file knows it, else Japanese."""
        return code if code in self.spec.languages else HOME

    # -- prompts ----------------------------------------------------------------------------------------------
    def template(self, lang: str, prompt: str, option: str | None = None) -> tuple[str, str, str]:
        """(language, key, text) of the prompt in `lang`: the option's own variant first (plain words for under-18)."""
        table = self.spec.prompts.get(lang) or self.spec.prompts[HOME]
        lang = lang if lang in self.spec.prompts else HOME
        if option and f"{prompt}@{option}" in table:
            return lang, f"{prompt}@{option}", table[f"{prompt}@{option}"]
        if prompt in table:
            return lang, prompt, table[prompt]
        # unreachable with a validated file for the call's keys: every language has every call key
        return HOME, prompt, self.spec.prompts[HOME][prompt]

    def line(self, lang: str, prompt: str, option: str | None = None, **fields: Value | Line) -> Line:
        """The prompt `prompt` in `lang` with its fields filled in, as text and as recordings."""
        lang, key, template = self.template(lang, prompt, option)
        parts: list[str | Phone] = []
        clips: list[str] | None = []
        for literal, clip, name in pieces(key, template):
            if literal:
                self._add(parts, literal)
                if clips is not None and clip:
                    clips.append(clip)
            if name:
                value = self._field(lang, fields[name])
                for part in value.parts:
                    self._add(parts, part)
                clips = None if clips is None or value.clips is None else [*clips, *value.clips]
        frozen = tuple(sorted(fields.items(), key=lambda kv: kv[0]))
        return Line(lang, tuple(parts), tuple(clips) if clips is not None else None, (prompt, option, frozen))

    @staticmethod
    def _add(parts: list[str | Phone], piece: str | Phone) -> None:
        if isinstance(piece, str) and parts and isinstance(parts[-1], str):
            parts[-1] += piece  # adjacent text is one piece: a spoken line is text, numbers, text
        else:
            parts.append(piece)

    def _field(self, lang: str, value: Value | Line) -> Line:
        """One field's words (and recordings) in `lang`."""
        if isinstance(value, Line):
            return value
        if isinstance(value, Phone):
            return Line(lang, (value,), tuple(f"number.{d}" for d in value.number if d.isdigit()))
        if isinstance(value, Named):
            return Line(lang, (value.in_(lang, self.japanese(lang)),), (f"name.{value.id}",))
        if isinstance(value, dt.datetime):
            return self.when(value, lang)
        named = self.spec.prompts.get(lang, {}).get(KEY_CLIPS.get(value, ""))  # how '*' is called: こめじるし, star
        return Line(lang, (named or value,), number_clips(value))

    def text_of(self, lang: str, value: Value) -> str:
        """How a field's value is said in `lang`, as text (a key, a number, a phone number, a name, an instant)."""
        return self._field(lang, value).text

    def when(self, local: dt.datetime, lang: str) -> Line:
        """A JST instant as a listener would want to hear it: the code's wording for Japanese and English, else the
        language's own `when` prompt, else digits."""
        table = self.spec.prompts.get(lang, {})
        if lang in WORDED or not any(k in table for k in WHEN_KEYS):
            japanese = self.japanese(lang)  # plain Japanese says dates as Japanese does
            return Line(lang, (spoken_when(local, HOME if japanese else lang),))
        fields: dict[str, Value | Line] = {"month": str(local.month), "day": str(local.day), "hour": str(local.hour)}
        key = "when_hour" if local.minute == 0 and "when_hour" in table else "when"
        used = {f for _, f, _, _ in string.Formatter().parse(table[key]) if f}
        if "month_name" in used:
            fields["month_name"] = self.line(lang, f"month.{local.month}")
        if "weekday" in used:
            fields["weekday"] = self.line(lang, f"weekday.{local.weekday()}")
        if key == "when":
            fields["minute"] = f"{local.minute:02d}"
        return self.line(lang, key, None, **fields)

    def again(self, line: Line, lang: str) -> Line:
        """The same line in another language."""
        prompt, option, fields = line.source
        return self.line(lang, prompt, option, **dict(fields))

    def top_menu(self, offered: frozenset[str] | None = None, layout: str = "default",
                 announcement: str | None = None) -> list[Line]:
        """Greeting, emergency notice, the announcement an operator set (in Japanese, then English), then each
        offered option with its key, then the repeat key."""
        return self.opening(announcement) + self.options_menu(offered, layout)

    def opening(self, announcement: str | None = None) -> list[Line]:
        """What every caller hears first, with or without a menu after it: greeting, emergency notice, and the
        announcement an operator set (in Japanese, then English)."""
        out = [self.line(HOME, "greeting"), self.line(HOME, "emergency")]
        return out + self.announcement(HOME, announcement) + self.announcement("en", announcement)

    def options_menu_options(self, layout: str = "default") -> tuple[Option, ...]:
        """The options of a layout in the order they are read out (the default layout for an unknown name)."""
        return self._layouts.get(layout, self._layouts["default"])[0]

    def options_menu(self, offered: frozenset[str] | None = None, layout: str = "default") -> list[Line]:
        """Each offered option with its key (and the foreign-language hints after its option), then the repeat key."""
        options, repeat = self._layouts.get(layout, self._layouts["default"])
        out = []
        for o in options:
            if offered is not None and o.id not in offered:
                continue
            out.append(self.line(HOME, "option_line", o.id, key=o.key, label=self.line(HOME, f"label.{o.id}")))
            if o.choose_language:  # a hint in each language that has one (English, plain Japanese)
                out += [self.line(lang, "foreign_hint", key=o.key) for lang, table in self.spec.prompts.items()
                        if lang != HOME and "foreign_hint" in table]
        out.append(self.line(HOME, "repeat_line", key=repeat))
        return out

    def language_menu(self) -> list[Line]:
        """The language menu: its introduction, then each language announced in itself with its key."""
        out = [self.line(HOME, "language_intro")]
        out += [self.line(lang, "announce", key=key) for key, lang in self.spec.language_keys.items()]
        return out

    def clips_needed(self, lang: str, names: dict[str, str]) -> dict[str, str]:
        """Every recording a language spoken from clips needs, with the words each says: its prompts piece by piece,
        the numbers 0-99, the keys that are not digits, and the referral lines' names (`names`: id -> name)."""
        out: dict[str, str] = {}
        for key, template in self.spec.prompts.get(lang, {}).items():
            out.update({clip: literal.strip() for literal, clip, _ in pieces(key, template) if clip})
        out.update({f"number.{n}": str(n) for n in range(NUMBER_CLIPS)})
        for k, code in self.spec.language_keys.items():
            if k in KEY_CLIPS and code == lang:
                out[KEY_CLIPS[k]] = self.spec.prompts.get(lang, {}).get(KEY_CLIPS[k], k)
        out.update({f"name.{rid}": text for rid, text in names.items()})
        return out

    def key_of_language(self, lang: str) -> str | None:
        """The key that chooses this language at the language menu; None when no key does."""
        return next((k for k, code in self.spec.language_keys.items() if code == lang), None)

    # -- speech -----------------------------------------------------------------------------------------------
    def speech_hints(self, *, options: bool) -> list[str]:
        """Words to pass as <Gather hints>: the options' and languages' words (top menu), or the languages'."""
        return self._listener.hints(options=options)

    def crisis(self, said: str, prefer: str = HOME) -> str | None:
        """The language of the crisis expression a spoken answer contains (`prefer`'s list first), at any
        confidence and whatever else was said; None when it contains none."""
        code = self._listener.crisis(said, prefer)
        if code is not None and code != prefer and self.japanese(code) and self.japanese(prefer):
            return prefer  # a kana spelling from the plain-Japanese list is still the Japanese caller's words
        return code

    def japanese(self, code: str) -> bool:
        """The language is spoken as Japanese (Japanese itself, plain Japanese)."""
        return self.language(code).say.startswith("ja")

    def heard(self, said: str, *, options: bool, layout: str = "default") -> tuple[str, str] | None:
        """What a spoken answer chose: ("option", id) or ("language", code); None when it names nothing, or more
        than one thing (never a guess)."""
        return self._listener.heard(said, self.options_menu_options(layout) if options else None)


def load_menu(path: Path = DEFAULT_FILE) -> Menu:
    """Read and check a menu file; ConfigError lists every mistake with the file and the YAML path."""
    spec = load_model(path, MenuFile)
    problems = check(spec, str(path))
    if problems:
        raise ConfigError(problems)
    return Menu(spec, str(path))


__all__ = ["DEFAULT_FILE", "Menu", "load_menu"]
