"""Unique callers without a membership oracle: after a campaign day nothing stored (Redis, the state file, the
runtime and metrics directories, the log) holds a caller's number in any form, or anything to test a guessed number
against; the counts stay right and `ivr report` reads them back."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import re
import stat
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue, SimpleWorker
from structlog.testing import capture_logs

from common.facts import parse_instant
from ivr.app import create_app
from ivr.cli import main
from ivr.clock import Clock
from ivr.settings import load_settings
from ivr.state import jobs
from ivr.state.callers import HLL_TTL, MARK_EVERY, caller_digest, count, fold_day, fold_ended
from ivr.state.keys import AGGREGATE_TTL, OPEN_DAYS
from ivr.tools.standin import OverHttp, StandIn
from tests.support import TOKEN, AppFactory, call, running_server

DAY, NEXT = "2025-05-03", "2025-05-04"
OPEN, NEXT_DAY = "2025-05-03T03:00:00+09:00", "2025-05-04T10:00:00+09:00"
# fictional numbers whose digits occur nowhere else (no date, port or timestamp has these runs)
CALLERS = ("+819071829364", "+818063519427", "+817092846153", "+819038475612", "+818057392846")
LATE = "+819064738291"  # calls the next day: the one caller its HyperLogLog may hold
SCRIPT = [(CALLERS[i % len(CALLERS)], ["1", "2", "5", "6", "4"][i % 5]) for i in range(3 * len(CALLERS))]


def forms(number: str) -> list[str]:
    """How a number may be written: E.164, digits only, national, national with dashes, its last 8 digits."""
    digits = number[1:]
    national = "0" + digits[2:]
    return [number, digits, national, f"{national[:3]}-{national[3:7]}-{national[7:]}", digits[-8:]]


def redis_material(client: redis.Redis) -> tuple[list[bytes], list[bytes]]:
    """(every key's DUMP, every name and value: candidate HMAC keys), RQ's compressed job data opened."""
    dumps: list[bytes] = []
    values: list[bytes] = []
    for k in client.scan_iter():
        dumps.append(k + b" " + (client.dump(k) or b""))
        kind = client.type(k).decode()
        if kind == "string":
            values.append(client.get(k) or b"")
        elif kind == "hash":
            values += [x for pair in client.hgetall(k).items() for x in pair]
        elif kind in ("set", "zset", "list"):
            values += list(client.smembers(k) if kind == "set" else client.zrange(k, 0, -1) if kind == "zset"
                           else client.lrange(k, 0, -1))
        values.append(k)
    for v in list(values):
        try:
            values.append(zlib.decompress(v))  # an RQ job's pickled call
        except zlib.error:
            pass
    dumps += values
    return dumps, values


def file_material(*dirs: Path) -> tuple[list[bytes], list[bytes]]:
    """(every file's bytes, the text tokens in them: candidate HMAC keys) under these directories."""
    blobs, tokens = [], []
    for d in dirs:
        for f in sorted(p for p in d.rglob("*") if p.is_file() and not p.is_symlink()):
            data = f.read_bytes().rstrip(b"\0")  # metrics files are mostly an empty mmap
            blobs.append(data)
            tokens += re.findall(rb"[\w+/=:.\-]{8,}", data)
    return blobs, tokens


def candidate_keys(values: list[bytes]) -> set[bytes]:
    """Every key an attacker could take from what is stored: each value as it is and, when it is hex, decoded."""
    out = {b""}
    for v in values:
        out.add(v)
        if re.fullmatch(rb"(?:[0-9a-f]{2})+", v):
            out.add(bytes.fromhex(v.decode()))
    return out


def leaks(haystack: bytes, keys: set[bytes], numbers: list[str], hash_key: bytes) -> list[str]:
    """Each way a caller's number shows in `haystack`: a written form, or an HMAC of one under a stored key or a
    day's own (never stored) key, as hex (whole or cut to 16 or more characters) or raw."""
    windows = {haystack[i:i + 8] for i in range(len(haystack) - 7)}  # a quick first look before a full search

    def present(needle: bytes) -> bool:
        return needle[:8] in windows and needle in haystack

    found = [f"{n} as {f!r}" for n in numbers for f in forms(n) if f.encode() in haystack]
    for n in numbers:
        for day in (DAY, NEXT):
            digest = caller_digest(hash_key, day, n)
            if present(digest.encode()[:16]) or present(bytes.fromhex(digest)):
                found.append(f"{n}: the HyperLogLog's own HMAC of {day}")
        for k in keys:
            for f in forms(n):
                mac = hmac.new(k, f.encode(), hashlib.sha256)
                if present(mac.hexdigest().encode()[:16]) or present(mac.digest()):
                    found.append(f"{n} as HMAC under {k[:40]!r}")
    return found


def hll_keys(client: redis.Redis) -> list[str]:
    """The keys holding a HyperLogLog (Redis's HYLL header), whatever their name."""
    return sorted(k.decode() for k in client.scan_iter() if client.type(k) == b"string"
                  and (client.get(k) or b"").startswith(b"HYLL"))


def secrets_of(hash_key: bytes) -> list[bytes]:
    """What would let anyone hash a guessed number as the service does: IVR_HASH_KEY and each day's key."""
    days = [hmac.new(hash_key, f"callers:{d}".encode(), hashlib.sha256).digest() for d in (DAY, NEXT)]
    return [hash_key, *days, *(k.hex().encode() for k in [hash_key, *days])]


@pytest.fixture
def campaign_day_on_redis(redis_url: str, tmp_path: Path, make_app: AppFactory) -> Iterator[redis.Redis]:
    """A campaign day on `ivr serve` (2 workers, Redis), its jobs folded by an RQ worker, then the next day's first
    call on another instance, which folds the day."""
    env = {"REDIS_URL": redis_url, "IVR_CLOCK": OPEN}
    with running_server(tmp_path, env, workers=2) as (_, base):
        for number, key in [*SCRIPT, ("anonymous", "1")]:
            StandIn(OverHttp(), TOKEN, base, keys=[key], caller=number).call()
    client = redis.Redis.from_url(redis_url)
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
    assert client.pfcount(f"ivr:callers:{DAY}") == len(CALLERS)  # counted while the day ran
    call(make_app(NEXT_DAY), ["1"], caller=LATE)
    yield client


def test_a_campaign_day_on_redis_leaves_no_number_and_no_oracle(campaign_day_on_redis: redis.Redis,
                                                                 tmp_path: Path) -> None:
    """After the day is folded, neither Redis nor any file the service wrote (runtime, metrics, log) holds a caller's
    number in any form, nor an HMAC of one under any key found there or the day's own; no HMAC key, no day key and no
    HyperLogLog of the ended day is left to test a guessed number against; the day's count is a plain number."""
    client = campaign_day_on_redis
    dumps, values = redis_material(client)
    blobs, tokens = file_material(tmp_path / "runtime", tmp_path / "metrics")
    blobs.append((tmp_path / "server.log").read_bytes())
    keys = candidate_keys(values + tokens)
    hash_key = load_settings({"TWILIO_AUTH_TOKEN": TOKEN}).hash_key
    haystack = b"\n".join(dumps + blobs)
    assert [] == leaks(haystack, keys, [*CALLERS, LATE], hash_key)
    assert [] == [k for k in client.scan_iter() if b"daykey" in k]
    assert [] == [s for s in secrets_of(hash_key) if s in haystack]  # no key beside the HyperLogLog
    assert [f"ivr:callers:{NEXT}"] == hll_keys(client)  # the running day's only: the ended day's is folded
    assert (b"5", True) == (client.get(f"ivr:callers-count:{DAY}"),
                             AGGREGATE_TTL - 60 < client.ttl(f"ivr:callers-count:{DAY}") <= AGGREGATE_TTL)
    assert b"1" == client.get(f"ivr:withheld:{DAY}")


@pytest.fixture
def embedded_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No REDIS_URL (even if the shell exports one): the embedded store, its state in tmp_path/state."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    return tmp_path / "state"


def embedded_app(state: Path, at: str) -> object:
    """An in-process app on the embedded store kept in `state`, its clock frozen at `at`."""
    return create_app({"TWILIO_AUTH_TOKEN": TOKEN, "IVR_STATE_DIR": str(state), "IVR_LOG_FORMAT": "json",
                       "CLOCK": Clock(parse_instant(at), frozen=True)})


def test_a_campaign_day_on_the_embedded_store_leaves_no_number_and_no_oracle(embedded_env: Path,
                                                                             tmp_path: Path) -> None:
    """`ivr serve` without Redis for a day, then the next day's first call: the state file (0600) holds counts only,
    never a caller's number, HMAC or HyperLogLog member, nor a key; nor do the runtime and metrics directories."""
    with running_server(tmp_path, {"IVR_STATE_DIR": str(embedded_env), "IVR_CLOCK": OPEN, "REDIS_URL": ""},
                        workers=1) as (_, base):
        for number, key in [*SCRIPT, ("anonymous", "1")]:
            StandIn(OverHttp(), TOKEN, base, keys=[key], caller=number).call()
    state = embedded_env / "embedded-state.json"
    saved = {e["key"]: e for e in json.loads(state.read_text())}
    assert ("5", "1") == (saved[f"ivr:callers-count:{DAY}"]["value"], saved[f"ivr:withheld:{DAY}"]["value"])
    call(embedded_app(embedded_env, NEXT_DAY), ["1"], caller=LATE)
    saved = {e["key"]: e for e in json.loads(state.read_text())}
    assert ("5", "1") == (saved[f"ivr:callers-count:{DAY}"]["value"], saved[f"ivr:callers-count:{NEXT}"]["value"])
    assert [] == [k for k in saved if k.startswith(("ivr:callers:", "ivr:daykey:", "ivr:call:"))]
    assert {"hash", "string"} == {e["type"] for e in saved.values()}
    assert (0o600, 0o700) == (stat.S_IMODE(state.stat().st_mode), stat.S_IMODE(embedded_env.stat().st_mode))
    blobs, tokens = file_material(embedded_env, tmp_path / "runtime", tmp_path / "metrics")
    blobs.append((tmp_path / "server.log").read_bytes())
    values = [v.encode() for e in saved.values() for v in (
        [e["key"], *(x for pair in e["value"].items() for x in pair)] if e["type"] == "hash" else [e["key"], e["value"]])]
    hash_key = load_settings({"TWILIO_AUTH_TOKEN": TOKEN}).hash_key
    assert [] == leaks(b"\n".join(blobs), candidate_keys(values + tokens), [*CALLERS, LATE], hash_key)
    assert [] == [s for s in secrets_of(hash_key) if s in b"\n".join(blobs)]
    assert [] == [p.name for p in embedded_env.iterdir() if p.name != "embedded-state.json"]  # no temporary left


def test_callers_are_counted_once_and_the_report_reads_the_folded_count(make_app: AppFactory, redis_url: str,
                                                                        tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two calls from one number and one from another count 2 while the day runs and after it is folded; `ivr
    report` shows the folded 2, and a second fold changes nothing."""
    app = make_app(OPEN)
    for number in (CALLERS[0], CALLERS[0], CALLERS[1], "anonymous"):
        call(app, ["1"], caller=number)
    assert (2, 1) == app.extensions["ivr.store"].unique_callers(DAY)
    later = make_app(NEXT_DAY)  # a worker starting the next day folds the ended day
    client = redis.Redis.from_url(redis_url)
    assert (None, b"2") == (client.get(f"ivr:callers:{DAY}"), client.get(f"ivr:callers-count:{DAY}"))
    assert (2, 1) == later.extensions["ivr.store"].unique_callers(DAY)
    assert 2 == fold_day(client, DAY)  # folded again (another worker, a retry): the same count
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert 0 == main(["report", "--campaign", "gw-2025", "--out", str(tmp_path)])
    with (tmp_path / "report-gw-2025.csv").open(encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if (r["date"], r["option"]) == (DAY, "all"))
    assert ("2", "1") == (row["unique_callers"], row["withheld_calls"])


def test_the_first_call_of_a_new_day_folds_the_day_before(make_app: AppFactory, redis_url: str) -> None:
    """A worker that has run since the day before folds it at the first call of the new day, not at its next start."""
    app = make_app(OPEN)
    for number in CALLERS[:3]:
        call(app, ["1"], caller=number)
    app.extensions["ivr.clock"] = Clock(parse_instant(NEXT_DAY), frozen=True)  # midnight has passed
    call(app, ["1"], caller=LATE)
    client = redis.Redis.from_url(redis_url)
    assert ([f"ivr:callers:{NEXT}"], b"3") == (hll_keys(client), client.get(f"ivr:callers-count:{DAY}"))


def test_workers_folding_the_same_day_at_once_count_it_once(redis_url: str) -> None:
    """Eight workers folding the same ended day at the same moment leave one count, equal to the day's estimate."""
    client = redis.Redis.from_url(redis_url)
    client.pfadd(f"ivr:callers:{DAY}", *(caller_digest(b"k", DAY, f"+8190{i:08d}") for i in range(200)))
    estimate = client.pfcount(f"ivr:callers:{DAY}")
    start = threading.Barrier(8)
    results: list[int | None] = []

    def fold() -> None:
        own = redis.Redis.from_url(redis_url)
        start.wait()
        results.append(fold_day(own, DAY))

    threads = [threading.Thread(target=fold) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [estimate] * 8 == results
    assert (str(estimate).encode(), 0) == (client.get(f"ivr:callers-count:{DAY}"), client.exists(f"ivr:callers:{DAY}"))


# -- an ended day's HyperLogLog never lingers: a short TTL, and every later trigger folds it --------------------------
def test_a_days_hyperloglog_expires_four_days_after_its_last_caller_not_a_year(make_app: AppFactory,
                                                                               redis_url: str) -> None:
    """An operator reading Redis finds a running day's HyperLogLog set to expire within 4 days, never 400."""
    call(make_app(OPEN), ["1"], caller=CALLERS[0])
    client = redis.Redis.from_url(redis_url)
    assert (HLL_TTL, [f"ivr:callers:{DAY}"]) == (4 * 86400, hll_keys(client))
    assert 4 * 86400 - 60 < client.ttl(f"ivr:callers:{DAY}") <= 4 * 86400


def test_a_process_marks_the_day_open_with_its_first_caller_then_every_ten_minutes(
        make_app: AppFactory, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every call sent the day's open mark again: two commands of four that repeated what Redis had. A process sends
    it with its first caller of the day and again once MARK_EVERY seconds have passed, so a store that lost it has
    it back; the HyperLogLog's TTL still goes with every caller."""
    app = make_app(OPEN)
    client = redis.Redis.from_url(redis_url)
    hll = f"ivr:callers:{DAY}"
    call(app, ["1"], caller=CALLERS[0])
    assert client.ttl(hll) > HLL_TTL - 60 and client.sismember(OPEN_DAYS, DAY)
    client.persist(hll)
    client.srem(OPEN_DAYS, DAY)
    call(app, ["1"], caller=CALLERS[1])
    assert client.ttl(hll) > HLL_TTL - 60
    assert (client.sismember(OPEN_DAYS, DAY), client.pfcount(hll)) == (0, 2)
    started = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: started + MARK_EVERY + 1)
    call(app, ["1"], caller=CALLERS[2])
    assert client.sismember(OPEN_DAYS, DAY)


def test_a_caller_just_before_midnight_marks_the_day_open_again_after_a_fold(make_app: AppFactory,
                                                                             redis_url: str) -> None:
    """A count made seconds before midnight can reach Redis after another worker has folded the day. Sent without
    the open mark, it made a HyperLogLog no fold would ever take; in the day's last ten minutes every caller marks
    the day, and the next fold counts them."""
    app = make_app("2025-05-03T23:55:00+09:00")
    client = redis.Redis.from_url(redis_url)
    call(app, ["1"], caller=CALLERS[0])
    assert fold_ended(client, NEXT) == ([DAY], [DAY])  # another worker's first call of the next day
    call(app, ["1"], caller=CALLERS[1])  # late: this worker has not seen the new day yet
    assert client.sismember(OPEN_DAYS, DAY) and client.ttl(f"ivr:callers:{DAY}") > HLL_TTL - 60
    assert fold_ended(client, NEXT) == ([DAY], [DAY])
    assert int(client.get(f"ivr:callers-count:{DAY}") or 0) == 2


def test_ivr_report_folds_the_last_campaign_day_when_no_call_follows(make_app: AppFactory, redis_url: str,
                                                                     tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """After the last campaign day nobody calls: `ivr report` the next day folds that day into a plain count (it
    leaves the running day alone) and reports the same unique callers."""
    app = make_app(OPEN)
    for number in CALLERS[:3]:
        call(app, ["1"], caller=number)
    client = redis.Redis.from_url(redis_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    uniques = []
    for at in (OPEN, NEXT_DAY):
        monkeypatch.setenv("IVR_CLOCK", at)
        assert 0 == main(["report", "--campaign", "gw-2025", "--out", str(tmp_path)])
        with (tmp_path / "report-gw-2025.csv").open(encoding="utf-8") as f:
            uniques += [r["unique_callers"] for r in csv.DictReader(f) if (r["date"], r["option"]) == (DAY, "all")]
        if at == OPEN:  # the day still runs: its HyperLogLog stays
            assert ([f"ivr:callers:{DAY}"], None) == (hll_keys(client), client.get(f"ivr:callers-count:{DAY}"))
    assert ([], b"3", 0, ["3", "3"]) == (hll_keys(client), client.get(f"ivr:callers-count:{DAY}"),
                                         client.scard("ivr:callers-days:open"), uniques)


def test_a_finished_calls_job_folds_the_days_before_it(make_app: AppFactory, redis_url: str) -> None:
    """The RQ job counting a call that finished the next day folds the day before, even if no web process has
    folded it (nor started) since."""
    app = make_app(OPEN)
    for number in CALLERS[:3]:
        call(app, ["1"], caller=number)
    client = redis.Redis.from_url(redis_url)
    queue = Queue("ivr", connection=client)
    SimpleWorker([queue], connection=client).work(burst=True)  # the day's own jobs fold nothing: the day runs
    assert ([f"ivr:callers:{DAY}"], None) == (hll_keys(client), client.get(f"ivr:callers-count:{DAY}"))
    queue.enqueue(jobs.fold_call, {"call": "c0ffee", "campaign": "gw-2025", "day": NEXT, "option": "general",
                                   "outcome": "answered", "hour": "10"})
    SimpleWorker([queue], connection=client).work(burst=True)
    assert ([], b"3", 1) == (hll_keys(client), client.get(f"ivr:callers-count:{DAY}"),
                             int(client.hget(f"ivr:agg:gw-2025:{NEXT}", "calls") or 0))


def test_a_day_whose_hyperloglog_expired_before_any_fold_is_logged_not_dropped_silently(redis_url: str) -> None:
    """If a day's HyperLogLog expired before anything folded it (a silent line, no report for days), the next fold
    logs a warning naming the day; a day another worker folded first is not reported as lost."""
    client = redis.Redis.from_url(redis_url)
    with client.pipeline() as pipe:
        for day in (DAY, NEXT):
            count(pipe, day, caller_digest(b"k", day, CALLERS[0]))
        pipe.execute()
    client.delete(f"ivr:callers:{DAY}")  # as its TTL would
    with capture_logs() as logs:
        assert (["2025-05-03", "2025-05-04"], ["2025-05-03", "2025-05-04"]) == fold_ended(client, "2025-05-05")
        assert ([], []) == fold_ended(client, "2025-05-05")
        assert 1 == fold_day(client, NEXT)  # folded again by a worker that saw the day open: nothing lost
    assert [("callers_expired_unfolded", DAY)] == [(e["event"], e["day"]) for e in logs if e["log_level"] == "warning"]
    assert (None, b"1") == (client.get(f"ivr:callers-count:{DAY}"), client.get(f"ivr:callers-count:{NEXT}"))


def test_an_earlier_releases_state_file_loses_its_day_key_and_hmacs_on_disk_as_soon_as_it_is_loaded(
        embedded_env: Path) -> None:
    """The first start after an upgrade rewrites the earlier release's state file (mode 0644, the day's HMAC key and
    the callers' HMACs in it, its `embedded-state.tmp` beside it): 0600, counts only, no temporary left."""
    hash_key = load_settings({"TWILIO_AUTH_TOKEN": TOKEN}).hash_key
    day_key = hmac.new(hash_key, f"callers:{DAY}".encode(), hashlib.sha256).digest()
    macs = sorted(hmac.new(day_key, n.encode(), hashlib.sha256).hexdigest() for n in CALLERS[:3])
    later = 4102444800  # 2100: not expired
    old = [{"key": f"ivr:agg:gw-2025:{DAY}", "type": "hash", "expires": later, "value": {"calls": "3"}},
           {"key": f"ivr:callers:{DAY}", "type": "set", "expires": later, "value": macs},
           {"key": f"ivr:daykey:{DAY}", "type": "bytes", "expires": later, "value": day_key.hex()},
           {"key": f"ivr:daykey:{NEXT}", "type": "bytes", "expires": 1, "value": day_key.hex()}]  # expired, on disk
    embedded_env.mkdir(mode=0o700)
    state = embedded_env / "embedded-state.json"
    state.write_text(json.dumps(old))
    state.chmod(0o644)
    (embedded_env / "embedded-state.tmp").write_text(json.dumps(old))
    embedded_app(embedded_env, NEXT_DAY)  # a worker boots: nothing counted yet
    saved = {e["key"]: e["value"] for e in json.loads(state.read_text())}
    assert (saved, stat.S_IMODE(state.stat().st_mode), sorted(p.name for p in embedded_env.iterdir())) == (
        {f"ivr:agg:gw-2025:{DAY}": {"calls": "3"}, f"ivr:callers-count:{DAY}": "3"}, 0o600, ["embedded-state.json"])
    on_disk = state.read_bytes()
    assert [] == [s for s in [day_key.hex().encode(), *(m.encode()[:16] for m in macs)] if s in on_disk]
