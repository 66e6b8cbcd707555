"""The names of everything the service writes to the store, and how long the counts are kept."""

from __future__ import annotations

AGGREGATE_TTL = 400 * 86400  # daily counts outlive the campaign and the next year's report
CALLERS = "callers"  # ivr:callers:<day>: the day's HyperLogLog, only while the day runs (folded once it is over)
CALLERS_COUNT = "callers-count"  # ivr:callers-count:<day>: a finished day's distinct callers, a plain number
OPEN_DAYS = "ivr:callers-days:open"  # the days (YYYY-MM-DD) that still have a HyperLogLog to fold
LEGACY_DAY_KEY = "daykey"  # ivr:daykey:<day>: an earlier release kept the day's HMAC key here; deleted on sight


def key(kind: str, ident: str) -> str:
    """Every key the service writes: ivr:<kind>:<id>."""
    return f"ivr:{kind}:{ident}"
