"""The names of everything the service writes to the store, and how long the counts are kept."""

from __future__ import annotations

AGGREGATE_TTL = 400 * 86400  # daily counts outlive the campaign and the next year's report


def key(kind: str, ident: str) -> str:
    """Every key the service writes: ivr:<kind>:<id>."""
    return f"ivr:{kind}:{ident}"
