"""Counsellors' login counts in Redis (ivr.state.logins): per id and per calling number (not a withheld one), across
instances and by Redis's clock, atomic under a burst, every key expiring, the number never kept, and nobody let in
without Redis."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from ivr.state.logins import LOCKOUT, MAX_WRONG, WINDOW, Attempt, Logins
from ivr.state.store import Store
from tests.support import AppFactory, RedisServer
from tests.test_counselor import (
    ASK_ID,
    ASK_PIN,
    COUNSELLOR,
    EXAMPLE,
    NOBODY_WAITING,
    OPEN,
    WRONG,
    brute_force,
    counsellor_call,
    later,
    pass_time,
)

KEY = b"hash key for the login tests"


def logins_on(url: str) -> Logins:
    return Logins(Store(redis.Redis.from_url(url), kind="redis", ttl=60), KEY)


def wrong(logins: Logins, counsellor_id: str, number: str) -> Attempt | str:
    """One try with a wrong PIN: marked, then failed."""
    attempt = logins.begin(counsellor_id, number)
    if isinstance(attempt, Attempt):
        logins.failed(attempt)
    return attempt


def everything_stored(url: str) -> str:
    """Every key and value in Redis, as text."""
    client = redis.Redis.from_url(url)
    out = []
    for k in client.scan_iter(count=1000):
        kind = client.type(k).decode()
        value: object = {"string": client.get, "hash": client.hgetall, "list": lambda x: client.lrange(x, 0, -1),
                         "set": client.smembers, "zset": lambda x: client.zrange(x, 0, -1, withscores=True)}[kind](k)
        out.append(f"{k!r} {value!r}")
    return "\n".join(out)


def test_five_wrong_tries_for_one_id_from_spoofed_numbers_lock_that_id(redis_url: str) -> None:
    """Someone rotating caller IDs still has only five guesses at a counsellor's PIN per 15 minutes."""
    logins = logins_on(redis_url)
    results = [wrong(logins, "1001", f"+8190000000{n:02d}") for n in range(8)]
    assert [isinstance(r, Attempt) for r in results] == [True] * MAX_WRONG + [False] * 3
    assert results[MAX_WRONG:] == ["locked"] * 3
    assert isinstance(logins.begin("1002", "+819000000099"), Attempt)  # another id from a fresh number: let through
    pass_time(redis_url, LOCKOUT - 10)
    assert logins.begin("1001", "+819000000099") == "locked"
    pass_time(redis_url, 10)
    assert isinstance(logins.begin("1001", "+819000000099"), Attempt)


def test_five_wrong_tries_from_one_number_lock_that_number_for_every_id(redis_url: str) -> None:
    """One phone trying many ids is stopped after five, whichever id it tries next."""
    logins = logins_on(redis_url)
    assert [isinstance(wrong(logins, f"{2000 + n}", COUNSELLOR), Attempt) for n in range(MAX_WRONG)] == [True] * 5
    pass_time(redis_url, 60)
    assert logins.begin("3000", COUNSELLOR) == "locked"
    assert isinstance(logins.begin("3000", "+819000000001"), Attempt)


def test_the_lock_is_the_fifth_wrong_try_plus_fifteen_minutes(redis_url: str) -> None:
    """Wrong tries spread over the window lock at the fifth; the lock lasts 15 minutes from it, not from the first."""
    logins = logins_on(redis_url)
    for minute in (0, 3, 6, 9, 12):
        pass_time(redis_url, 3 * 60 if minute else 0)
        assert isinstance(wrong(logins, "1001", COUNSELLOR), Attempt)
    pass_time(redis_url, LOCKOUT - 10)  # 27 minutes after the first wrong try, 10 s before the lock ends
    assert logins.begin("1001", "+819000000001") == "locked"
    pass_time(redis_url, 10)
    assert isinstance(logins.begin("1001", "+819000000001"), Attempt)


def test_tries_older_than_the_window_no_longer_count(redis_url: str) -> None:
    """A counsellor who mistyped four times yesterday (or 15 minutes ago) is not one try from a lockout."""
    logins = logins_on(redis_url)
    for _ in range(MAX_WRONG - 1):
        wrong(logins, "1001", COUNSELLOR)
    pass_time(redis_url, WINDOW - 10)
    almost = logins.begin("1001", COUNSELLOR)
    assert isinstance(almost, Attempt) and almost.counts == (5, 5)
    logins.succeeded(almost)
    pass_time(redis_url, 10)
    after = logins.begin("1001", COUNSELLOR)
    assert isinstance(after, Attempt) and after.counts == (1, 1)


def test_a_right_pin_takes_back_only_its_own_mark(redis_url: str) -> None:
    """A login does not wipe earlier wrong tries, so an attacker's guesses still count after the counsellor logs in."""
    logins = logins_on(redis_url)
    for _ in range(3):
        wrong(logins, "1001", "+819000000001")
    right = logins.begin("1001", COUNSELLOR)
    assert isinstance(right, Attempt) and right.counts == (4, 1)
    logins.succeeded(right)
    nxt = logins.begin("1001", "+819000000002")
    assert isinstance(nxt, Attempt) and nxt.counts == (4, 1)


def test_a_burst_of_simultaneous_tries_has_only_five_checked(redis_url: str) -> None:
    """200 calls guessing at the same moment on several instances: five PINs are checked, the rest refused."""
    instances = [logins_on(redis_url) for _ in range(4)]
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda n: instances[n % 4].begin("1001", f"+81900000{n:04d}"), range(200)))
    assert sum(isinstance(r, Attempt) for r in results) == MAX_WRONG
    assert sum(r == "locked" for r in results) == 200 - MAX_WRONG


def test_every_key_expires_and_no_number_is_kept(make_app: AppFactory, redis_url: str) -> None:
    """After the brute force through the app, every login key in Redis has a TTL within its window, and neither the
    calling number nor any run of its digits is in any key or value."""
    apps = [make_app(OPEN, IVR_PARTNERS_FILE=str(EXAMPLE)) for _ in range(2)]
    brute_force(apps, ["1001", "482193"])
    client = redis.Redis.from_url(redis_url)
    keys = sorted(k.decode() for k in client.scan_iter("ivr:login-*"))
    assert [k.rsplit(":", 1)[0] for k in keys] == ["ivr:login-fails:id", "ivr:login-fails:number",
                                                   "ivr:login-lock:id", "ivr:login-lock:number"]
    assert keys[0] == "ivr:login-fails:id:1001" and keys[2] == "ivr:login-lock:id:1001"
    assert all(0 < client.ttl(k) <= max(WINDOW, LOCKOUT) for k in keys)
    stored = everything_stored(redis_url)
    digits = COUNSELLOR.lstrip("+")
    assert [digits[i:i + 6] for i in range(len(digits) - 5) if digits[i:i + 6] in stored] == []


def test_without_the_store_nobody_is_let_through(own_redis: RedisServer) -> None:
    """A dead Redis, or one the store has just seen fail, refuses the try before any PIN is checked."""
    logins = logins_on(own_redis.url)
    assert isinstance(logins.begin("1001", COUNSELLOR), Attempt)
    own_redis.stop()
    assert logins.begin("1001", COUNSELLOR) == "unavailable"
    logins.store.ping()  # the store notices and backs off
    assert logins.store.degraded
    assert logins.begin("1001", COUNSELLOR) == "unavailable"


def test_instances_share_the_counts(make_app: AppFactory) -> None:
    """Four wrong tries on one instance and one on another lock the id on both: the counts live in Redis."""
    a, b = (make_app(OPEN, IVR_PARTNERS_FILE=str(EXAMPLE)) for _ in range(2))
    counsellor_call(a, ["1001", "000001", "1001", "000002", "1001", "000003"], number="+819000000001")
    counsellor_call(a, ["1001", "000004"], number="+819000000002")
    counsellor_call(b, ["1001", "000005"], number="+819000000003")
    for app in (a, b):
        refused = counsellor_call(app, ["1001", "482193"])
        assert refused.heard()[:3] == [ASK_ID, ASK_PIN, WRONG] and refused.connected is None


@pytest.mark.parametrize("number", ["anonymous", "+266696687", "", "client:alice"])
def test_a_withheld_number_is_not_counted_but_the_id_still_is(redis_url: str, number: str) -> None:
    """Guesses from withheld numbers lock no shared "withheld" count, yet an id guessed five times is still locked."""
    logins = logins_on(redis_url)
    tries = [wrong(logins, f"{2000 + n}", number) for n in range(MAX_WRONG + 1)]
    assert [(t.subjects, t.counts) for t in tries if isinstance(t, Attempt)] == [(("id",), (1,))] * (MAX_WRONG + 1)
    assert [wrong(logins, "1001", number) for _ in range(MAX_WRONG + 1)][MAX_WRONG] == "locked"
    assert logins.begin("1001", "+819000000001") == "locked"
    client = redis.Redis.from_url(redis_url)
    assert not [k for k in client.scan_iter("ivr:login-*") if b":number:" in k]


def test_an_instance_with_its_clock_ahead_keeps_the_others_wrong_tries(make_app: AppFactory) -> None:
    """A rehearsal instance a day ahead on the same Redis neither wipes live wrong tries nor cuts a lockout short."""
    live = make_app(OPEN, IVR_PARTNERS_FILE=str(EXAMPLE))
    ahead = make_app(later(OPEN, 24 * 3600), IVR_PARTNERS_FILE=str(EXAMPLE))
    behind = make_app(later(OPEN, -24 * 3600), IVR_PARTNERS_FILE=str(EXAMPLE))
    counsellor_call(live, ["1001", "000001", "1001", "000002", "1001", "000003"], number="+819000000001")
    counsellor_call(live, ["1001", "000004"], number="+819000000002")
    counsellor_call(ahead, ["1001", "000005"], number="+819000000003")
    for app in (live, ahead, behind):
        refused = counsellor_call(app, ["1001", "482193"])
        assert refused.heard()[:3] == [ASK_ID, ASK_PIN, WRONG] and refused.connected is None
    other = counsellor_call(behind, ["1002", "730416"], number="+819000000004", dial_status="no-answer")
    assert other.heard()[:3] == [ASK_ID, ASK_PIN, NOBODY_WAITING]
