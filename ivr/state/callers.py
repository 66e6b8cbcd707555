"""Unique callers per JST day, counted so that nothing stored can tell whether a given number called.

While a day runs, each caller's number goes into the day's HyperLogLog (`ivr:callers:<day>`) as an HMAC under a key
made from IVR_HASH_KEY and the day (`caller_digest`): the key lives only in the service's environment and the memory
of the process that made it, so neither it nor any HMAC is written anywhere. Once the day is over its HyperLogLog is
folded into a plain number (`ivr:callers-count:<day>`, kept as long as the other daily counts) and deleted: after
that even someone who learns the hash key has nothing to test a guessed number against.

A day's HyperLogLog never outlives its day by more than a few days: each PFADD (made while the day runs) sets its
TTL to HLL_TTL, a day plus GRACE, so it expires 3 to 4 days after its JST day ends, folded or not. The day is marked
open by each process's first caller of the day, again at least every MARK_EVERY seconds, and by every caller in the
day's last MARK_EVERY seconds (`mark_due`): a count that reaches Redis after its day was folded makes the day open
again, and the next trigger folds it too. It is folded long
before that by whichever comes first: the first call of a later day in each web process (`Store.count_caller`),
the RQ job of any finished call on a later day (`jobs.fold_call`), a web worker's start, or `ivr report` (folding
needs no key). A day is lost only if none of these happens within GRACE after it ends (a line with no call at all
for three days, and nobody running the report); even then not silently: the next fold finds the day still open
with its HyperLogLog gone and logs `callers_expired_unfolded` naming it.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from typing import Any

import redis
import structlog

from common.facts import JST
from ivr.state.keys import AGGREGATE_TTL, CALLERS, CALLERS_COUNT, LEGACY_DAY_KEY, OPEN_DAYS, key

log = structlog.get_logger("ivr.state")
GRACE = 3 * 86400  # how long an ended day's HyperLogLog waits, at least, to be folded before it expires
HLL_TTL = 86400 + GRACE  # set at each PFADD, made during the day: gone 3 to 4 days after the day ends
MARK_EVERY = 600  # seconds: how often a process sets the day's TTL and open mark again (a store that lost them)
FOLD_TRIES = 10  # a fold that keeps meeting late writes to the same day gives up, to be tried at the next trigger


def caller_digest(hash_key: bytes, day: str, number: str) -> str:
    """What the day's HyperLogLog is fed for a caller: an HMAC of the number under HMAC(hash key, "callers:" + day),
    a key made from IVR_HASH_KEY once per day in each process and never stored."""
    return hmac.new(_day_key(hash_key, day), number.strip().encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=8)
def _day_key(hash_key: bytes, day: str) -> bytes:
    """HMAC(hash key, "callers:" + day): kept in this process's memory for the few days in use, never written."""
    return hmac.new(hash_key, f"callers:{day}".encode(), hashlib.sha256).digest()


def count(pipe: Any, day: str, digest: str, *, mark: bool = True) -> None:
    """Queue the commands that add one caller's digest to the day's HyperLogLog, its TTL HLL_TTL again (it ends
    GRACE to GRACE plus a day after its day) and, with `mark`, mark the day as open."""
    pipe.pfadd(key(CALLERS, day), digest)
    pipe.expire(key(CALLERS, day), HLL_TTL)
    if mark:
        pipe.sadd(OPEN_DAYS, day)
        pipe.expire(OPEN_DAYS, AGGREGATE_TTL)


def mark_due(instant: dt.datetime, last: float | None, now: float) -> bool:
    """Whether a caller counted at `instant` marks the day as open again: the process has not marked it yet (`last`
    None), or did MARK_EVERY seconds ago or more (`now` and `last` on the monotonic clock), or the call is in the
    day's last MARK_EVERY seconds (its count may reach the store after the day was folded; marked, the next fold
    takes it)."""
    local = instant.astimezone(JST)
    to_midnight = 86400 - (local.hour * 3600 + local.minute * 60 + local.second)
    return last is None or now - last >= MARK_EVERY or to_midnight <= MARK_EVERY


def fold_day(client: Any, day: str) -> int | None:
    """Fold the day's HyperLogLog into its plain count (added to what an earlier fold left) and delete it, with an
    earlier release's day key; the day's distinct callers, or None when late writes kept it busy (tried again at the
    next trigger). Idempotent and safe with several workers: WATCH on both keys, one MULTI for the change. A day
    still open whose HyperLogLog has expired unfolded (no trigger within GRACE) is logged, never passed over
    silently."""
    hll, total_key = key(CALLERS, day), key(CALLERS_COUNT, day)
    client.pfcount(hll)  # PFCOUNT may rewrite the HyperLogLog's cached estimate, which counts as a write under WATCH
    with client.pipeline() as pipe:
        for _ in range(FOLD_TRIES):
            try:
                pipe.watch(hll, total_key)
                existed = bool(pipe.exists(hll))
                estimate = int(pipe.pfcount(hll)) if existed else 0
                total = int(pipe.get(total_key) or 0) + estimate
                pipe.multi()
                if estimate:
                    pipe.set(total_key, total, ex=AGGREGATE_TTL)
                pipe.delete(hll, key(LEGACY_DAY_KEY, day))
                pipe.srem(OPEN_DAYS, day)
                closed = pipe.execute()[-1]  # 1: this fold closed the day (0: another worker did, or never open)
                if closed and not existed:
                    log.warning("callers_expired_unfolded", day=day, detail="the day's HyperLogLog expired before "
                                "anything folded it: its unique callers are missing from the report")
                return total
            except redis.WatchError:
                continue  # a worker counted a late caller meanwhile, or folded it first: look again
    return None


def fold_ended(client: Any, today: str, *, sweep: bool = False) -> tuple[list[str], list[str]]:
    """Fold every day before `today` that still has a HyperLogLog: (the days that had one, those folded). `sweep`
    also finds the HyperLogLogs an earlier release left (by SCAN) and deletes its day keys. Raises RedisError."""
    days = {_text(d) for d in client.smembers(OPEN_DAYS)}
    if sweep:
        days |= {_text(k).removeprefix(key(CALLERS, "")) for k in client.scan_iter(key(CALLERS, "*"))}
        client.delete(*client.scan_iter(key(LEGACY_DAY_KEY, "*")), key(LEGACY_DAY_KEY, today))
    ended = sorted(d for d in days if d < today)
    return ended, [d for d in ended if fold_day(client, d) is not None]


def fold_quietly(client: Any, today: str) -> list[str]:
    """fold_ended for a caller that has other work to finish (the RQ job counting a finished call): the days
    folded; a Redis failure is logged and left to the next trigger, never raised."""
    try:
        folded = fold_ended(client, today)[1]
    except redis.RedisError as e:
        log.warning("callers_not_folded", error=type(e).__name__)
        return []
    if folded:
        log.info("callers_folded", days=folded)
    return folded


def read(pipe: Any, day: str) -> None:
    """Queue the reads whose results `unique` turns into the day's figures (no key needed)."""
    pipe.get(key(CALLERS_COUNT, day))
    pipe.pfcount(key(CALLERS, day))
    pipe.get(key("withheld", day))


def unique(results: list[Any]) -> tuple[int, int]:
    """(distinct callers, withheld calls) from `read`'s results: a finished day's folded count plus the estimate of
    any callers not folded yet (the running day's, or a late one's)."""
    folded, estimate, held = results
    return int(folded or 0) + int(estimate or 0), int(held or 0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
