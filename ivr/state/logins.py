"""Counsellors' logins across calls and web instances: wrong tries counted in Redis, per counsellor id and per calling
number, and a lockout once either has had too many.

Every try with an id and a PIN is first marked in each count, in one transaction, before the PIN is checked: a
burst of calls at once can have at most MAX_WRONG tries checked per id or number, however many instances answer
them. A wrong PIN leaves its mark; the try that makes MAX_WRONG in WINDOW locks its id or number for LOCKOUT; a
right PIN, or a try refused as locked, takes its own mark back. The calling number is never kept: its count is keyed
by an HMAC of it under the service's hash key (IVR_HASH_KEY). A withheld number (ivr.privacy.withheld: "anonymous",
no From, anything not E.164) is not counted at all: it names no one phone, and one count for every withheld caller
would let one of them lock out every counsellor who withholds theirs; the id's count still applies.

Instants come from Redis's own clock (TIME, read just before the transaction), never an instance's: instances whose
clocks differ (a rehearsal clock on the same Redis) judge the same window, and none drops another's marks. A mark
that ran out between the read and the transaction is dropped on the next try (fails closed). A lockout is a key
that Redis expires LOCKOUT seconds after it is set; every other key also expires when its window ends.

Without the store (degraded, or an error) nobody is let in: the people who log in here hear callers in distress.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import redis
import structlog

from ivr.privacy import withheld
from ivr.state.keys import key

log = structlog.get_logger("ivr.logins")
MAX_WRONG = 5  # wrong tries in WINDOW that lock an id or a number
WINDOW = 15 * 60  # seconds
LOCKOUT = 15 * 60  # seconds a locked id or number is refused, the right PIN included
FAILS, LOCKS = "login-fails", "login-lock"  # ivr:login-fails:<subject> (sorted set), ivr:login-lock:<subject>
SUBJECTS = ("id", "number")
NUMBER_CONTEXT = b"ivr counsellor login number\x00"  # keeps these HMACs apart from the call hashes
Refused = Literal["locked", "unavailable"]


@dataclass(frozen=True)
class Attempt:
    """A try let through to the PIN check: what it is counted as ("id", and "number" unless withheld), its mark in
    each count, how many tries each count holds with it, and when it was made by Redis's clock."""

    member: str
    subjects: tuple[str, ...]
    fails: tuple[str, ...]
    locks: tuple[str, ...]
    counts: tuple[int, ...]
    at: float


class Logins:
    """Wrong-try counts and lockouts in the store's Redis (the embedded store's in a process without REDIS_URL)."""

    def __init__(self, store: Any, hash_key: bytes):
        self.store = store
        self.hash_key = hash_key

    def subjects(self, counsellor_id: str, number: str) -> dict[str, str]:
        """What is counted, by kind: the id as keyed and, unless withheld, the calling number as an HMAC (never the
        number)."""
        counted = {"id": f"id:{counsellor_id}"}
        if not withheld(number):
            digest = hmac.new(self.hash_key, NUMBER_CONTEXT + number.strip().encode(), hashlib.sha256).hexdigest()
            counted["number"] = f"number:{digest[:32]}"
        return counted

    def begin(self, counsellor_id: str, number: str) -> Attempt | Refused:
        """Mark a try, at Redis's time; the Attempt when the PIN may be checked, "locked" when the id or the number
        is locked out, "unavailable" when the store cannot say."""
        if self.store.degraded:
            log.warning("counsellor_login_store_down", reason="degraded")
            return "unavailable"
        subjects = self.subjects(counsellor_id, number)
        fails = tuple(key(FAILS, s) for s in subjects.values())
        locks = tuple(key(LOCKS, s) for s in subjects.values())
        member = secrets.token_hex(8)
        try:
            seconds, micros = self.store.client.time()
            at = int(seconds) + int(micros) / 1e6
            pipe = self.store.client.pipeline(transaction=True)
            for k in fails:
                pipe.zremrangebyscore(k, "-inf", at - WINDOW)
                pipe.zadd(k, {member: at})
                pipe.zcard(k)
                pipe.expire(k, WINDOW)
            pipe.mget(locks)
            results = pipe.execute()
        except redis.RedisError as e:
            log.warning("counsellor_login_store_down", reason=type(e).__name__)
            return "unavailable"
        counts = tuple(int(results[4 * i + 2]) for i in range(len(fails)))
        if any(v is not None for v in results[-1]) or max(counts) > MAX_WRONG:
            self._take_back(fails, member)
            return "locked"
        return Attempt(member, tuple(subjects), fails, locks, counts, at)

    def failed(self, attempt: Attempt) -> tuple[str, ...]:
        """A wrong id or PIN: its mark stays. The subjects ("id", "number") this try has just locked out."""
        due = [(subject, lock) for subject, lock, n in zip(attempt.subjects, attempt.locks, attempt.counts, strict=True)
               if n >= MAX_WRONG]
        if not due:
            return ()
        try:
            pipe = self.store.client.pipeline(transaction=True)
            for _, lock in due:
                pipe.set(lock, f"{attempt.at + LOCKOUT:.3f}", ex=LOCKOUT)  # until when, by Redis's clock
            pipe.execute()
        except redis.RedisError as e:  # the marks alone still refuse further tries until the window has passed
            log.warning("counsellor_login_store_down", reason=type(e).__name__, op="lock")
        return tuple(subject for subject, _ in due)

    def succeeded(self, attempt: Attempt) -> None:
        """The right PIN: this try's marks are taken back (earlier wrong tries still count, for their window)."""
        self._take_back(attempt.fails, attempt.member)

    def _take_back(self, fails: tuple[str, ...], member: str) -> None:
        try:
            pipe = self.store.client.pipeline(transaction=True)
            for k in fails:
                pipe.zrem(k, member)
            pipe.execute()
        except redis.RedisError as e:  # the mark then counts as a wrong try until its window ends: fail closed
            log.warning("counsellor_login_store_down", reason=type(e).__name__, op="take_back")


def init_app(app: Any) -> None:
    """The counsellors' login counts (app.extensions["ivr.logins"]), in the app's store, under its hash key."""
    app.extensions["ivr.logins"] = Logins(app.extensions["ivr.store"], app.extensions["ivr.settings"].hash_key)
