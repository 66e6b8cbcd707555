"""The hotline's fixed facts, one home each: its zone and language, the phone-number pattern, Twilio's answered
statuses, and the JST reading of an instant. Pure: no clock reads."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

# Japan Standard Time: every campaign window, shift, opening hour and calendar day is in it (no daylight saving).
JST = ZoneInfo("Asia/Tokyo")

# The home language: the menus are spoken in it and every partner speaks it unless its entry says otherwise.
HOME = "ja"

# An E.164 phone number (+, country code, at most 15 digits); Twilio gives callers' and partners' numbers this way.
E164_PATTERN = r"^\+[1-9]\d{6,14}$"
E164 = re.compile(E164_PATTERN)  # use .fullmatch(): `$` also matches before a trailing newline

# Twilio QueueResult values meaning a person in the queue's partner answered the caller.
QUEUE_ANSWERED = frozenset({"bridged", "redirected-from-bridged"})
# Twilio DialCallStatus values meaning the dialled partner's phone was answered.
DIAL_ANSWERED = frozenset({"completed", "answered"})


def jst_day(instant: dt.datetime) -> str:
    """The JST calendar day of an aware instant, 'YYYY-MM-DD': the day a call counts toward in the daily figures."""
    if instant.tzinfo is None:  # astimezone() would read the server's own zone
        raise ValueError(f"{instant.isoformat()} has no zone; give an aware instant")
    return instant.astimezone(JST).date().isoformat()


def parse_instant(text: str) -> dt.datetime:
    """An ISO-8601 instant with its zone (…+09:00 or …Z). A bare local time is refused: it would be ambiguous."""
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO-8601 instant; write e.g. 2025-05-03T03:00:00+09:00") from None
    if value.tzinfo is None:
        raise ValueError(f"'{text}' has no zone; write it with one, e.g. {value.isoformat()}+09:00 for JST")
    return value


__all__ = ["DIAL_ANSWERED", "E164", "E164_PATTERN", "HOME", "JST", "QUEUE_ANSWERED", "jst_day", "parse_instant"]
