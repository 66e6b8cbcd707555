"""The menu file's schema: languages, options and key layouts, spoken answers, prompts, and the checks across them."""

from __future__ import annotations

import string
from typing import Annotated

from pydantic import Field, model_validator

from common.configfile import Problem, Strict, yaml_path
from common.facts import HOME

# Every language speaks these once the caller is past the menu.
CALL_KEYS = (
    "connecting", "wait", "wait_position", "wait_average", "wait_short", "overflow", "all_busy", "referral",
    "connected_now", "repeat_referrals", "referral_keys", "referral_keys_sms", "sms_intro", "sms_sent", "sms_failed",
    "goodbye", "emergency_short",
    "closed", "next_open", "next_open_tentative", "next_unknown", "now_open_lines",
    "crisis", "connecting_interpreter", "try_later", "quieter_hours", "referral_chat", "referral_mail",
    "wait_long",
)
# An option with its own wording (`connecting@under18`) has it for every line after the menu, except the SMS text.
VARIANT_KEYS = tuple(k for k in CALL_KEYS if k != "sms_intro")
# The menus themselves are in Japanese, with a few lines in English for callers who do not understand it.
HOME_KEYS = ("greeting", "emergency", "option_line", "repeat_line", "invalid", "no_input", "to_general",
             "option_closed", "language_intro", "language_retry", "fallback", "speech_unclear", "speech_check",
             "counsellor_id", "counsellor_pin", "counsellor_unavailable",
             "counsellor_pin_wrong", "counsellor_locked", "counsellor_whisper", "counsellor_whisper_unknown",
             "counsellor_none_waiting", "counsellor_next", "counsellor_bye", "counsellor_after",
             "counsellor_transfer", "counsellor_transfer_language", "counsellor_language_line",
             "counsellor_transferred", "counsellor_emergency", "counsellor_emergency_failed")
ENGLISH_KEYS = ("foreign_hint", "language_retry", "option_closed")
# How a date and time is said where the code has no rule for the language (every field a number, so a language
# spoken from recordings can say it with number clips); `when_hour` is used on the hour.
WHEN_KEYS = ("when", "when_hour")
# The placeholders each prompt takes, all of them required; a prompt not listed takes none.
PROMPT_FIELDS = {
    "option_line": {"label", "key"}, "repeat_line": {"key"}, "announce": {"key"}, "foreign_hint": {"key"},
    "referral": {"name", "number"}, "referral_chat": {"name"}, "referral_mail": {"name"},
    "quieter_hours": {"start", "end"}, "next_open": {"when"}, "next_open_tentative": {"when"},
    "wait_position": {"position"}, "wait_average": {"minutes"}, "wait_long": {"minutes"},
    "counsellor_whisper": {"label", "language", "minutes"}, "counsellor_language_line": {"key", "language"},
    "counsellor_transferred": {"label"},
    "when": {"month", "day", "hour", "minute"}, "when_hour": {"month", "day", "hour"},
}
# Placeholders a prompt may leave out: a date may be said with the month's and weekday's names (prompts `month.1`-
# `month.12` and `weekday.0` (Monday)-`weekday.6` of the language) instead of the month's number.
PROMPT_OPTIONAL = {"when": {"month", "month_name", "weekday"}, "when_hour": {"month", "month_name", "weekday"}}


class Language(Strict):
    """A language callers may choose: how Twilio speaks and hears it, or that it is played from recordings."""

    name: str
    name_ja: str = Field(min_length=1, description="the language's name in Japanese, for counsellors")
    say: str = Field(pattern=r"^[a-z]{2,3}-[A-Z]{2}$", description="BCP-47 code for <Say language> and speech input")
    listen: str | None = Field(default=None, pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?-[A-Z]{2}$",
                               description="BCP-47 code for <Gather language> where speech recognition names the "
                               "language otherwise than <Say> (Mandarin: cmn-Hans-CN); none: `say`")
    voice: str | None = Field(default=None, pattern=r"^(Polly|Google)\.[A-Za-z0-9-]+$",
                              description="text-to-speech voice; none when Twilio has no voice for the language")
    recorded: bool = Field(default=False, description="spoken from recordings (menus/audio/<code>/) wherever they "
                           "exist; required when there is no voice")
    words: list[str] = Field(default_factory=list, description="what a caller may say to choose it")
    telephone: bool = Field(default=True, description="the voice reads <say-as interpret-as='telephone'>; "
                            "false: phone numbers are spelt out digit by digit")

    @model_validator(mode="after")
    def _spoken_somehow(self) -> Language:
        if self.voice is None and not self.recorded:
            raise ValueError("a language without a voice must be recorded: true")
        return self


class Option(Strict):
    """One choice of the menu: the key a caller presses and the option id routing answers it by."""

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
    """The whole menu file: languages, options and layouts, timing, spoken answers and every prompt's wording."""

    languages: dict[str, Language]
    options: list[Option] = Field(min_length=1)
    repeat_key: str = Field(pattern=r"^[0-9*]$")
    layouts: dict[str, Layout] = Field(default_factory=dict)
    max_tries: int = Field(default=3, ge=1, le=5)
    gather_timeout: int = Field(default=6, ge=3, le=15)
    speech: Speech = Field(default_factory=Speech)
    language_keys: dict[str, str]
    crisis: dict[str, list[str]] = Field(default_factory=dict, description="language -> expressions of suicidal "
                                         "crisis; said at any menu, they put the caller through to a person at once")
    announcements: list[Annotated[str, Field(pattern=r"^[a-z0-9_-]+$")]] = Field(
        default_factory=list, description="prepared announcements an operator may play after the greeting "
        "(`ivr ops announce <id>`); each is the prompt `announcement.<id>`, in every language")
    prompts: dict[str, dict[str, str]]

    @model_validator(mode="after")
    def _consistent(self) -> MenuFile:
        if HOME not in self.languages:
            raise ValueError(f"languages must include '{HOME}'")
        return self


def check(spec: MenuFile, file: str) -> list[Problem]:
    """Mistakes across the menu file's parts: keys used twice, unknown options and languages, missing translations,
    wrong placeholders; empty when every caller would hear every prompt."""
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
    if not [w for w in spec.crisis.get(HOME, []) if w.strip()]:
        problems.append(Problem(file, yaml_path(("crisis", HOME)), "must list the Japanese crisis expressions"))
    for lang, words in spec.crisis.items():
        if lang not in spec.languages:
            problems.append(Problem(file, yaml_path(("crisis", lang)),
                                    f"not a configured language; allowed: {', '.join(spec.languages)}"))
        for i, word in enumerate(words):
            if not word.strip():
                problems.append(Problem(file, yaml_path(("crisis", lang, i)), "an empty expression matches anything"))
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
        need += [f"announcement.{a}" for a in spec.announcements]
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


def missing_variants(spec: MenuFile) -> list[str]:
    """`prompts.<lang>.<key>@<option>` paths missing: an option with its own wording for one line after the menu
    (plain words for under-18 callers) has it for every one, so its caller never hears the general wording."""
    out = []
    for lang, table in spec.prompts.items():
        options = {k.partition("@")[2] for k in table if "@" in k and k.partition("@")[0] in VARIANT_KEYS}
        for option in sorted(options):
            out += [f"prompts.{lang}.{k}@{option}" for k in VARIANT_KEYS if f"{k}@{option}" not in table]
    return out


__all__ = [
    "CALL_KEYS",
    "ENGLISH_KEYS",
    "HOME_KEYS",
    "PROMPT_FIELDS",
    "PROMPT_OPTIONAL",
    "VARIANT_KEYS",
    "WHEN_KEYS",
    "Language",
    "Layout",
    "MenuFile",
    "Option",
    "Speech",
    "check",
    "missing_variants",
]
