"""What counts as a caller's number, and whether it was withheld. Nothing here keeps or logs a number."""

from __future__ import annotations

from common.facts import E164

# Twilio's values for a withheld caller ID, and what carriers send instead of one.
WITHHELD = frozenset({"", "anonymous", "restricted", "unknown", "unavailable", "private", "+266696687", "266696687",
                      "+86282452253", "+8656696"})


def withheld(number: str) -> bool:
    """True when there is no usable number: withheld, or not a plain E.164 number."""
    return number.strip().lower() in WITHHELD or not E164.fullmatch(number.strip())
