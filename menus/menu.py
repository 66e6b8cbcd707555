"""What the caller hears and presses: the menu file's schema and the pure code that renders prompts from it."""

from __future__ import annotations

import datetime as dt
import string
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, model_validator

from routing.configfile import ConfigError, Problem, Strict, load_model, yaml_path

DEFAULT_FILE = Path(__file__).with_name("menu.yaml")
HOME = "ja"

# Every language speaks these once the caller is past the menu.
CALL_KEYS = (
    "connecting", "wait", "wait_position", "wait_average", "wait_short", "overflow", "all_busy", "referral",
    "connected_now", "repeat_referrals", "referral_keys", "referral_keys_sms", "sms_intro", "sms_sent", "sms_failed",
    "goodbye", "emergency_short",
    "closed", "next_open", "next_open_tentative", "next_unknown", "now_open_lines",
)
# The menus themselves are in Japanese, with a few lines in English for callers who do not understand it.
HOME_KEYS = ("greeting", "emergency", "option_line", "repeat_line", "invalid", "no_input", "to_general",
             "option_closed", "language_intro", "language_retry", "fallback", "speech_unclear", "speech_check",
             "counsellor_unknown", "counsellor_pin",
             "counsellor_pin_wrong", "counsellor_locked", "counsellor_whisper", "counsellor_whisper_unknown",
             "counsellor_none_waiting", "counsellor_next", "counsellor_bye")
ENGLISH_KEYS = ("foreign_hint", "language_retry", "option_closed")
# How a date and time is said where the code has no rule for the language (every field a number, so a language
# spoken from recordings can say it with number clips); `when_hour` is used on the hour.
WHEN_KEYS = ("when", "when_hour")
# The placeholders each prompt takes, all of them required; a prompt not listed takes none.
PROMPT_FIELDS = {
    "option_line": {"label", "key"}, "repeat_line": {"key"}, "announce": {"key"}, "foreign_hint": {"key"},
    "referral": {"name", "number"}, "next_open": {"when"}, "next_open_tentative": {"when"},
    "wait_position": {"position"}, "wait_average": {"minutes"},
    "counsellor_whisper": {"label", "language", "minutes"},
    "when": {"month", "day", "hour", "minute"}, "when_hour": {"month", "day", "hour"},
}
# Placeholders a prompt may leave out: a date may be said with the month's and weekday's names (prompts `month.1`-
# `month.12` and `weekday.0` (Monday)-`weekday.6` of the language) instead of the month's number.
PROMPT_OPTIONAL = {"when": {"month", "month_name", "weekday"}, "when_hour": {"month", "month_name", "weekday"}}
KEY_CLIPS = {"*": "key.star", "#": "key.hash"}
NUMBER_CLIPS = 100  # number.0 .. number.99 are recorded; larger numbers are said digit by digit


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number inside a spoken line: read digit group by digit group."""

    number: str


@dataclass(frozen=True, slots=True)
class Named:
    """Something with a name in each language (a referral line), and the recording of that name: `name.<id>`."""

    id: str
    names: tuple[tuple[str, str], ...]  # (language, name); "ja" and "en" at least

    def in_(self, lang: str, japanese: bool) -> str:
        table = dict(self.names)
        return table.get(lang) or table["ja" if japanese else "en"]


Value = str | Phone | Named | dt.datetime  # a field: text (digits are numbers), a phone number, a name, a JST instant


@dataclass(frozen=True, slots=True)
class Line:
    """One thing said, in one language: text pieces and phone numbers, and the recordings that say the same thing
    (`clips`, None when some piece cannot be said from recordings). `source` rebuilds it in another language."""

    lang: str
    parts: tuple[str | Phone, ...]
    clips: tuple[str, ...] | None = None
    source: tuple[str, str | None, tuple[tuple[str, Value | Line], ...]] = ("", None, ())

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.number for p in self.parts)


class Language(Strict):
    name: str
    name_ja: str = Field(min_length=1, description="the language's name in Japanese, for counsellors")
    say: str = Field(pattern=r"^[a-z]{2,3}-[A-Z]{2}$", description="BCP-47 code for <Say language> and speech input")
    voice: str | None = Field(default=None, pattern=r"^(Polly|Google)\.[A-Za-z0-9-]+$",
                              description="text-to-speech voice; none when Twilio has no voice for the language")
    recorded: bool = Field(default=False, description="spoken from recordings (menus/audio/<code>/) wherever they "
                           "exist; required when there is no voice")
    words: list[str] = Field(default_factory=list, description="what a caller may say to choose it")

    @model_validator(mode="after")
    def _spoken_somehow(self) -> Language:
        if self.voice is None and not self.recorded:
            raise ValueError("a language without a voice must be recorded: true")
        return self


class Option(Strict):
    key: str = Field(pattern=r"^[0-9]$")
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    choose_language: bool = False


class Speech(Strict):
    """Spoken answers: accepted at once at or above `confidence`; below it, the caller is asked to press the key."""

    confidence: float = Field(default=0.6, gt=0, le=1)
    words: dict[str, list[str]] = Field(default_factory=dict, description="option id -> what a caller may say")


class Layout(Strict):
    """Another key layout for campaigns that offered other options (a campaign names it with `menu:`)."""

    repeat_key: str = Field(pattern=r"^[0-9*]$")
    options: list[Option] = Field(min_length=1)
    note: str | None = None


class MenuFile(Strict):
    languages: dict[str, Language]
    options: list[Option] = Field(min_length=1)
    repeat_key: str = Field(pattern=r"^[0-9*]$")
    layouts: dict[str, Layout] = Field(default_factory=dict)
    max_tries: int = Field(default=3, ge=1, le=5)
    gather_timeout: int = Field(default=6, ge=3, le=15)
    speech: Speech = Field(default_factory=Speech)
    language_keys: dict[str, str]
    prompts: dict[str, dict[str, str]]

    @model_validator(mode="after")
    def _consistent(self) -> MenuFile:
        if HOME not in self.languages:
            raise ValueError(f"languages must include '{HOME}'")
        return self


def _check(spec: MenuFile, file: str) -> list[Problem]:
    problems: list[Problem] = []
    layouts: list[tuple[tuple[str, ...], list[Option], str]] = [(("options",), spec.options, spec.repeat_key)]
    layouts += [(("layouts", name, "options"), lay.options, lay.repeat_key) for name, lay in spec.layouts.items()]
    if "default" in spec.layouts:
        problems.append(Problem(file, yaml_path(("layouts", "default")), "'default' is the top-level options"))
    for where, options, repeat in layouts:
        keys = [o.key for o in options]
        for i, o in enumerate(options):
            if keys.index(o.key) != i or o.key == repeat:
                problems.append(Problem(file, yaml_path((*where, i, "key")), f"key '{o.key}' is used twice"))
    known = {o.id for _, options, _ in layouts for o in options}
    for oid in spec.speech.words:
        if oid not in known:
            problems.append(Problem(file, yaml_path(("speech", "words", oid)),
                                    f"not an option; allowed: {', '.join(sorted(known))}"))
    for key, lang in spec.language_keys.items():
        if len(key) != 1 or key not in "0123456789*#":
            problems.append(Problem(file, yaml_path(("language_keys", key)), "a key is one of 0-9, * or #"))
        if lang not in spec.languages or lang == HOME:
            allowed = ", ".join(c for c in spec.languages if c != HOME)
            problems.append(Problem(file, yaml_path(("language_keys", key)), f"'{lang}' is not allowed: {allowed}"))
    for lang in spec.languages:
        have = spec.prompts.get(lang, {})
        need = list(CALL_KEYS)
        if lang == HOME:
            ids = dict.fromkeys(o.id for _, options, _ in layouts for o in options)
            need += [*HOME_KEYS, *(f"label.{i}" for i in ids)]
        else:
            need += ["announce"] + (list(ENGLISH_KEYS) if lang == "en" else [])
            if spec.languages[lang].voice is None:  # said from number clips: the code's own wording needs a voice
                need += list(WHEN_KEYS)
            dates = " ".join(have.get(k, "") for k in WHEN_KEYS)
            need += [f"month.{n}" for n in range(1, 13)] if "{month_name}" in dates else []
            need += [f"weekday.{n}" for n in range(7)] if "{weekday}" in dates else []
        for key in need:
            if key not in have:
                problems.append(Problem(file, yaml_path(("prompts", lang, key)), "missing translation"))
    for lang, table in spec.prompts.items():
        if lang not in spec.languages:
            problems.append(Problem(file, yaml_path(("prompts", lang)),
                                    f"not a configured language; allowed: {', '.join(spec.languages)}"))
        for key, text in table.items():
            at = yaml_path(("prompts", lang, key))
            try:
                used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
            except ValueError as e:
                problems.append(Problem(file, at, f"broken placeholder ({e}); write {{name}}, and {{{{ for a brace"))
                continue
            base, variant, _ = key.partition("@")
            optional = PROMPT_OPTIONAL.get(base, set())
            want = PROMPT_FIELDS.get(base, set()) | optional
            must = want - optional - ({"label"} if variant else set())  # an option's own wording may omit its label
            if not must <= used <= want:
                problems.append(Problem(file, at, f"placeholders {sorted(used)}; this prompt takes "
                                        f"{sorted(want) if want else 'none'}"
                                        + (f", needs {sorted(must)}" if must != want else "")))
    return problems


_WEEKDAYS = {
    "ja": ("月", "火", "水", "木", "金", "土", "日"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")


def spoken_when(local: dt.datetime, lang: str) -> str:
    """A local (JST) instant as a listener would want to hear it."""
    if lang == "ja":
        ampm = "午前" if local.hour < 12 else "午後"
        hour = local.hour if local.hour <= 12 else local.hour - 12
        minute = f"{local.minute}分" if local.minute else ""
        return f"{local.month}月{local.day}日、{_WEEKDAYS['ja'][local.weekday()]}曜日の{ampm}{hour}時{minute}"
    if lang == "en":
        clock = f"{local.hour % 12 or 12}{f':{local.minute:02d}' if local.minute else ''} " + (
            "a.m." if local.hour < 12 else "p.m.")
        return f"{_WEEKDAYS['en'][local.weekday()]} {local.day} {_MONTHS_EN[local.month - 1]} at {clock}"
    return f"{local:%Y-%m-%d %H:%M}"


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
        # what a caller may say, normalised once: option id -> words, language code -> words
        self._option_words = {oid: [normalize(w) for w in words] for oid, words in spec.speech.words.items()}
        self._language_words = {code: [normalize(w) for w in spec.languages[code].words]
                                for code in spec.language_keys.values() if code in spec.languages}

    @property
    def layouts(self) -> dict[str, frozenset[str]]:
        """Layout name -> its option ids."""
        return {name: frozenset(o.id for o in opts) for name, (opts, _) in self._layouts.items()}

    @property
    def all_option_ids(self) -> tuple[str, ...]:
        return tuple(self._by_id)

    def repeat_key(self, layout: str = "default") -> str:
        return self._layouts.get(layout, self._layouts["default"])[1]

    # -- keys -------------------------------------------------------------------------------------------------
    def option_for_key(self, digits: str, layout: str = "default") -> Option | None:
        return self._by_key.get(layout, self._by_key["default"]).get(digits)

    def option(self, option_id: str) -> Option | None:
        return self._by_id.get(option_id)

    def language_for_key(self, digits: str) -> str | None:
        return self.spec.language_keys.get(digits)

    def language(self, code: str) -> Language:
        return self.spec.languages.get(code) or self.spec.languages[HOME]

    def known_language(self, code: str | None) -> str:
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
            return Line(lang, (value.in_(lang, self.language(lang).say.startswith("ja")),), (f"name.{value.id}",))
        if isinstance(value, dt.datetime):
            return self.when(value, lang)
        named = self.spec.prompts.get(lang, {}).get(KEY_CLIPS.get(value, ""))  # how '*' is called: こめじるし, star
        return Line(lang, (named or value,), number_clips(value))

    def text_of(self, lang: str, value: Value) -> str:
        return self._field(lang, value).text

    def when(self, local: dt.datetime, lang: str) -> Line:
        """A JST instant as a listener would want to hear it: the code's wording for Japanese and English, else the
        language's own `when` prompt, else digits."""
        table = self.spec.prompts.get(lang, {})
        if lang in _WEEKDAYS or not any(k in table for k in WHEN_KEYS):
            japanese = self.language(lang).say.startswith("ja")  # plain Japanese says dates as Japanese does
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

    def top_menu(self, offered: frozenset[str] | None = None, layout: str = "default") -> list[Line]:
        """Greeting, emergency notice, then each offered option with its key, then the repeat key."""
        out = [self.line(HOME, "greeting"), self.line(HOME, "emergency")]
        out += self.options_menu(offered, layout)
        return out

    def options_menu_options(self, layout: str = "default") -> tuple[Option, ...]:
        return self._layouts.get(layout, self._layouts["default"])[0]

    def options_menu(self, offered: frozenset[str] | None = None, layout: str = "default") -> list[Line]:
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
        return next((k for k, code in self.spec.language_keys.items() if code == lang), None)

    # -- speech -----------------------------------------------------------------------------------------------
    def speech_hints(self, *, options: bool) -> list[str]:
        """Words to pass as <Gather hints>: the options' and languages' words (top menu), or the languages'."""
        words = [w for o in self.options for w in self.spec.speech.words.get(o.id, ())] if options else []
        words += [w for code in self.spec.language_keys.values() for w in self.spec.languages[code].words]
        return list(dict.fromkeys(words))

    def heard(self, said: str, *, options: bool, layout: str = "default") -> tuple[str, str] | None:
        """What a spoken answer chose: ("option", id) or ("language", code); None when it names nothing, or more
        than one thing (never a guess)."""
        text = normalize(said)
        if not text:
            return None
        found: set[tuple[str, str]] = set()
        if options:
            found |= {("option", o.id) for o in self.options_menu_options(layout)
                      if any(w in text for w in self._option_words.get(o.id, ()))}
        found |= {("language", code) for code, words in self._language_words.items() if any(w in text for w in words)}
        if len(found) == 2 and options:  # a language named at the top menu is the foreign-language option
            kinds = dict(found)
            chosen = self._by_id.get(kinds.get("option", ""))
            if chosen is not None and chosen.choose_language:
                found = {("language", kinds["language"])}
        return found.pop() if len(found) == 1 else None


def pieces(key: str, template: str) -> list[tuple[str, str | None, str | None]]:
    """A prompt's template as (text, the clip that records it, the field after it): a prompt without fields is one
    clip named as the prompt, one with fields a clip per piece of text, `<prompt>.<n>`; blank text has no clip."""
    parsed = list(string.Formatter().parse(template))
    whole = len(parsed) == 1 and parsed[0][1] is None
    return [(literal, (key if whole else f"{key}.{j}") if literal.strip() else None, name)
            for j, (literal, name, _, _) in enumerate(parsed)]


def normalize(text: str) -> str:
    """Spoken text for matching: width-folded, lower case, without spaces or punctuation."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def number_clips(value: str) -> tuple[str, ...] | None:
    """Recordings that say a key or a number (small numbers whole, large ones digit by digit); None for words."""
    if value in KEY_CLIPS:
        return (KEY_CLIPS[value],)
    if not value.isascii() or not value.isdigit():
        return None
    if int(value) < NUMBER_CLIPS:
        return (f"number.{int(value)}",)
    return tuple(f"number.{d}" for d in value)


def load_menu(path: Path = DEFAULT_FILE) -> Menu:
    spec = load_model(path, MenuFile)
    problems = _check(spec, str(path))
    if problems:
        raise ConfigError(problems)
    return Menu(spec, str(path))


__all__ = ["HOME", "Language", "Line", "Menu", "Named", "Option", "Phone", "load_menu", "number_clips", "spoken_when"]
