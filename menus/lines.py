"""Spoken lines and the recordings that say them: phone numbers, names, prompt pieces, numbers, keys and dates."""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass

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
        """Its name as a caller of `lang` hears it: the language's own, else Japanese or English."""
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
        """The whole line as one text, phone numbers included: what a voice says."""
        return "".join(p if isinstance(p, str) else p.number for p in self.parts)


def pieces(key: str, template: str) -> list[tuple[str, str | None, str | None]]:
    """A prompt's template as (text, the clip that records it, the field after it): a prompt without fields is one
    clip named as the prompt, one with fields a clip per piece of text, `<prompt>.<n>`; blank text has no clip."""
    parsed = list(string.Formatter().parse(template))
    whole = len(parsed) == 1 and parsed[0][1] is None
    return [(literal, (key if whole else f"{key}.{j}") if literal.strip() else None, name)
            for j, (literal, name, _, _) in enumerate(parsed)]


def number_clips(value: str) -> tuple[str, ...] | None:
    """Recordings that say a key or a number (small numbers whole, large ones digit by digit); None for words."""
    if value in KEY_CLIPS:
        return (KEY_CLIPS[value],)
    if not value.isascii() or not value.isdigit():
        return None
    if int(value) < NUMBER_CLIPS:
        return (f"number.{int(value)}",)
    return tuple(f"number.{d}" for d in value)


_WEEKDAYS = {
    "ja": ("月", "火", "水", "木", "金", "土", "日"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS_EN = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")
WORDED = frozenset(_WEEKDAYS)  # languages whose dates spoken_when words itself; others use their `when` prompts


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


__all__ = ["KEY_CLIPS", "NUMBER_CLIPS", "WORDED", "Line", "Named", "Phone", "Value", "number_clips", "pieces",
           "spoken_when"]
