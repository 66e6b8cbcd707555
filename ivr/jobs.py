"""Background jobs (RQ): small top-level functions that take plain data."""

from __future__ import annotations

from rq import get_current_job

from ivr.state import key

AGGREGATE_TTL = 400 * 86400  # keep a campaign's daily counts past the next year's campaign


def fold_call(record: dict[str, str]) -> bool:
    """Add one finished call to its campaign-day counters, once: a repeated status callback is not counted twice."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("fold_call runs as an RQ job")
    conn = job.connection
    if not conn.set(key("folded", record["call"]), 1, nx=True, ex=2 * 86400):
        return False
    day = key("agg", f"{record.get('campaign') or 'closed'}:{record['day']}")
    pipe = conn.pipeline(transaction=True)
    pipe.hincrby(day, "calls", 1)
    pipe.hincrby(day, f"option:{record.get('option') or 'none'}", 1)
    pipe.hincrby(day, f"outcome:{record.get('outcome') or 'unknown'}", 1)
    pipe.expire(day, AGGREGATE_TTL)
    pipe.execute()
    return True
