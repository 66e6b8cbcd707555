"""What the aggregates count besides calls and outcomes: talk time and language, coarse and per hour, never per call.

A finished call adds to its campaign day's hash (`ivr:agg:<campaign>:<day>`, jobs.fold_call):
- `talk|<option>|h<HH>`: seconds of conversation of the calls that came in that JST hour for that option, and
  `talked|<option>|h<HH>`: how many of them talked. Their ratio is the hour's average handling time (the staffing
  plan, ivr/tools/staffing.py). Only these sums are kept; a call's own seconds live in its record for its TTL.
- `lang|<language>` and `lang|<language>|answered`: calls and answered calls by the caller's language (the published
  breakdown by language).

Talk time comes from Twilio: a dial's `DialCallDuration` when the partner's phone answered; for a queue, Twilio
requests the <Enqueue> action only after the bridged call ends, so the conversation is the time from being put in the
queue (`routed`, in the call's record) to that request, less `QueueTime` spent waiting.
"""

from __future__ import annotations

import datetime as dt
import re

from common.facts import DIAL_ANSWERED, HOME, QUEUE_ANSWERED, parse_instant

LANGUAGE = re.compile(r"[a-z]{2,8}")  # the menu's language codes (ja, easy, en, fil...): anything else is "other"
MAX_TALK = 6 * 3600  # a longer conversation is counted as this long (a stuck bridge must not swamp the hour)


def talk_seconds(kind: str, result: str, record: dict[str, str], now: dt.datetime, queue_time: int,
                 dial_duration: int) -> int | None:
    """Seconds the caller talked with a counsellor in this queue or dial outcome; None when they did not."""
    if kind == "dial":
        return min(dial_duration, MAX_TALK) if result in DIAL_ANSWERED and dial_duration > 0 else None
    routed = record.get("routed", "")
    if kind != "queue" or result not in QUEUE_ANSWERED or not routed.isdigit():
        return None
    return min(max(0, int(now.timestamp()) - int(routed) - queue_time), MAX_TALK)


def language(record: dict[str, str]) -> str:
    """The caller's language as counted: a menu code; the home language (Japanese) for a caller who rang while the
    line was open and hung up in the top menu, which is in that language (their record has no option and no
    language yet); else 'other' (a caller who chose the foreign-language option and left before naming one)."""
    lang = record.get("lang", "")
    if not lang and not record.get("option") and record.get("outcome") == "open":
        return HOME
    return lang if LANGUAGE.fullmatch(lang) else "other"


def started(text: str | None, now: dt.datetime) -> dt.datetime:
    """The instant a call came in, from its record (`started`, ISO with zone): the day and the hour it counts
    toward, even when its status callback comes after midnight JST. `now` when the record is gone or unreadable."""
    try:
        return parse_instant(text) if text else now
    except ValueError:  # no zone, or not an instant at all
        return now


def talk_key(option: str, hour: str) -> tuple[str, str]:
    """The counters of an option's talk time in a JST hour ('00'-'23'): (seconds, calls that talked)."""
    return f"talk|{option}|h{hour}", f"talked|{option}|h{hour}"


def lang_key(lang: str) -> tuple[str, str]:
    """The counters of a language: (calls, answered calls)."""
    return f"lang|{lang}", f"lang|{lang}|answered"


def counters(record: dict[str, str], option: str) -> list[str]:
    """The counters a finished call adds 1 to, beyond jobs.call_counters: its language, and its talk when it talked."""
    calls, answered = lang_key(language(record))
    out = [calls] + ([answered] if record.get("outcome") == "answered" else [])
    if record.get("talk", "").isdigit():
        out.append(talk_key(option, record.get("hour", "00"))[1])
    return out


def amounts(record: dict[str, str], option: str) -> dict[str, int]:
    """The counters a finished call adds more than 1 to: its talk seconds, in its hour and option's sum."""
    talk = record.get("talk", "")
    if not talk.isdigit():
        return {}
    return {talk_key(option, record.get("hour", "00"))[0]: min(int(talk), MAX_TALK)}
