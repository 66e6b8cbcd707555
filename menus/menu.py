"""What the caller hears and presses: the menu file's schema and the pure code that renders prompts from it."""

from __future__ import annotations

import datetime as dt
import string
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
             "option_closed", "language_intro", "language_retry", "fallback", "counsellor_unknown", "counsellor_pin",
             "counsellor_pin_wrong", "counsellor_locked", "counsellor_whisper", "counsellor_whisper_unknown",
             "counsellor_none_waiting", "counsellor_next", "counsellor_bye")
ENGLISH_KEYS = ("foreign_hint", "language_retry", "option_closed")
FIELDS = {"key", "label", "name", "number", "when", "position", "minutes", "language"}
# The placeholders each prompt takes, all of them required; a prompt not listed takes none.
PROMPT_FIELDS = {
    "option_line": {"label", "key"}, "repeat_line": {"key"}, "announce": {"key"}, "foreign_hint": {"key"},
    "referral": {"name", "number"}, "next_open": {"when"}, "next_open_tentative": {"when"},
    "wait_position": {"position"}, "wait_average": {"minutes"},
    "counsellor_whisper": {"label", "language", "minutes"},
}


@dataclass(frozen=True, slots=True)
class Phone:
    """A phone number inside a spoken line: read digit group by digit group."""

    number: str


@dataclass(frozen=True, slots=True)
class Line:
    """One thing said, in one language: text pieces and phone numbers."""

    lang: str
    parts: tuple[str | Phone, ...]

    @property
    def text(self) -> str:
        return "".join(p if isinstance(p, str) else p.number for p in self.parts)


class Language(Strict):
    name: str
    name_ja: str = Field(min_length=1, description="the language's name in Japanese, for counsellors")
    say: str = Field(pattern=r"^[a-z]{2,3}-[A-Z]{2}$", description="BCP-47 code for <Say language>")
    voice: str = Field(pattern=r"^(Polly|Google)\.[A-Za-z0-9-]+$")


class Option(Strict):
    key: str = Field(pattern=r"^[0-9]$")
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    choose_language: bool = False


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
    for key, lang in spec.language_keys.items():
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
            want = PROMPT_FIELDS.get(base, set())
            must = want - {"label"} if variant else want  # an option's own wording may leave out its label
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
    def line(self, lang: str, prompt: str, option: str | None = None, **fields: str | Phone) -> Line:
        """The prompt `prompt` in `lang` (the option's own variant first, e.g. plain words for under-18)."""
        table = self.spec.prompts.get(lang) or self.spec.prompts[HOME]
        if option and f"{prompt}@{option}" in table:
            template = table[f"{prompt}@{option}"]
        elif prompt in table:
            template = table[prompt]
        else:  # unreachable with a validated file: every language has every call key
            lang, template = HOME, self.spec.prompts[HOME][prompt]
        parts: list[str | Phone] = []
        for literal, name, _, _ in string.Formatter().parse(template):
            pieces: list[str | Phone] = [literal] if literal else []
            if name:
                value = fields[name]
                pieces.append(value if isinstance(value, Phone) else str(value))
            for piece in pieces:  # adjacent text is one piece: a spoken line is text, numbers, text
                if isinstance(piece, str) and parts and isinstance(parts[-1], str):
                    parts[-1] += piece
                else:
                    parts.append(piece)
        return Line(lang, tuple(parts))

    def top_menu(self, offered: frozenset[str] | None = None, layout: str = "default") -> list[Line]:
        """Greeting, emergency notice, then each offered option with its key, then the repeat key."""
        out = [self.line(HOME, "greeting"), self.line(HOME, "emergency")]
        out += self.options_menu(offered, layout)
        return out

    def options_menu(self, offered: frozenset[str] | None = None, layout: str = "default") -> list[Line]:
        options, repeat = self._layouts.get(layout, self._layouts["default"])
        out = []
        for o in options:
            if offered is not None and o.id not in offered:
                continue
            out.append(self.line(HOME, "option_line", o.id, key=o.key, label=self.line(HOME, f"label.{o.id}").text))
            if o.choose_language and "en" in self.spec.languages:
                out.append(self.line("en", "foreign_hint", key=o.key))
        out.append(self.line(HOME, "repeat_line", key=repeat))
        return out

    def language_menu(self) -> list[Line]:
        out = [self.line(HOME, "language_intro")]
        out += [self.line(lang, "announce", key=key) for key, lang in self.spec.language_keys.items()]
        return out


def load_menu(path: Path = DEFAULT_FILE) -> Menu:
    spec = load_model(path, MenuFile)
    problems = _check(spec, str(path))
    if problems:
        raise ConfigError(problems)
    return Menu(spec, str(path))


__all__ = ["HOME", "Language", "Line", "Menu", "Option", "Phone", "load_menu", "spoken_when"]
