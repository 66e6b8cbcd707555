"""Shared state: Redis when REDIS_URL is set, an embedded in-process default otherwise.

State only enriches a call: every write and read is best-effort, and a failing Redis flips the service into
degraded mode for a few seconds (no call waits on a dead connection) instead of touching the caller's path.

Between `begin()` and `flush()` (one webhook request) writes to Redis wait and go out together with the next command
whose answer is needed, or at `flush()`: a request costs one round trip, not one per write, and commands still run
in the order they were asked for. Under gunicorn's gevent worker (`share_writes()`, from ivr/gunicorn_conf.py) a
request's writes and reads go out with those of the worker's other requests, in one transaction sent by one
greenlet once the worker has nothing else to run (ivr/state/outbox.py); a request that read gets its replies from
it, and a request answers once the transaction holding its writes is done (a group commit): a round trip is shared
by every request being served meanwhile (a round trip under gevent costs about as much CPU as the rest of a step),
and the call's next webhook, on whichever instance, reads what this one wrote.

Unique callers per JST day: ivr/state/callers.py (no key beside them; a plain count once the day is over).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fakeredis
import redis
import redis.sentinel
import structlog
from rq import Queue

from common.facts import jst_day
from ivr.deployment import sentinel_address
from ivr.privacy import withheld
from ivr.settings import ServiceSettings, Settings
from ivr.state import callers, embedded
from ivr.state.keys import AGGREGATE_TTL, key
from ivr.state.outbox import SENT_WAIT, Commands, Outbox, gatherer, shared
from ivr.state.scripts import TAKE_PLACE

log = structlog.get_logger("ivr.state")
CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
RETRY_AFTER = 2.0  # seconds a failed Redis is left alone before the next try
# Connections a process may open to Redis (redis-py's default is 100, past which a command fails): under gunicorn's
# gevent worker every open connection (worker_connections, ivr/gunicorn_conf.py) may be a request waiting on Redis.
MAX_REDIS_CONNECTIONS = 1000
WAIT = (0.25, 0.5)  # seconds to connect to Redis and for it to answer, on a webhook's path (and the RQ worker's)
LEASE_TTL = 90 * 60  # a place at a partner is given back by then even if every callback is lost


def valid_call_sid(value: str | None) -> str | None:
    """The CallSid when it is one (CA and 32 hex digits), else None: nothing else names a key."""
    return value if value and CALL_SID.match(value) else None


class Store:
    """The shared store, best effort: Redis (or the embedded one), with a back-off while it is unreachable."""

    def __init__(self, client: redis.Redis, *, kind: str, ttl: int, metrics: Any = None,
                 state_file: Path | None = None, hash_key: bytes | None = None):
        self.client = client
        self.kind = kind  # "redis" or "embedded"
        self.state_file = state_file if kind == "embedded" else None
        if self.state_file is not None:
            embedded.load_state(self.client, self.state_file)
        self.ttl = ttl
        self.metrics = metrics
        self.hash_key = hash_key  # IVR_HASH_KEY: callers are counted only with it (reading needs none)
        self._down_until = 0.0
        self.queue = Queue("ivr", connection=client, is_async=(kind == "redis"))
        self._take_place = client.register_script(TAKE_PLACE)
        self._batch = threading.local()  # each request's waiting writes (one per greenlet under gunicorn's gevent)
        self.outbox: Outbox | None = None  # made at the first flush or read after share_writes()
        self._opening = threading.Lock()
        self._today: str | None = None  # the latest JST day this process has folded the days before
        self._marked: dict[str, float] = {}  # the day whose TTL and open mark were last sent, and when (monotonic)

    @property
    def degraded(self) -> bool:
        """True while the store is unreachable and left alone (a few seconds after a failure)."""
        return time.monotonic() < self._down_until

    def failed(self, op: str, err: Exception) -> None:
        """Redis did not answer `op`: leave it alone for RETRY_AFTER seconds (degraded), said once."""
        first = not self.degraded
        self._down_until = time.monotonic() + RETRY_AFTER
        self._marked = {}  # they may not have reached it
        if self.metrics:
            self.metrics.degraded.set(1)
        if first:
            log.warning("store_unreachable", op=op, error=type(err).__name__, retry_in_s=RETRY_AFTER)

    def reached(self) -> None:
        """Redis answered: no longer degraded, if it was."""
        if self._down_until:
            self._down_until = 0.0
            if self.metrics:
                self.metrics.degraded.set(0)
            log.info("store_recovered")

    # -- one round trip per request -----------------------------------------------------------------------------
    def begin(self) -> None:
        """Writes from now on (in this thread) wait for the request's next read or its flush() (Redis only; the
        embedded store runs each at once). Writes left over from a request that never reached flush() are dropped."""
        self._batch.writes = [] if self.kind == "redis" else None

    def flush(self) -> None:
        """Send the writes still waiting, and stop batching: with the worker's shared transaction when writes are
        shared (share_writes), else now; either way they are sent when this returns."""
        writes: list[Commands] | None = getattr(self._batch, "writes", None)
        self._batch.writes = None
        if not writes or self.degraded:
            return
        if shared():
            self._shared().add(writes).wait(SENT_WAIT)  # the next webhook of the call, on any instance, reads them
            return
        self._execute("write", writes)

    def _shared(self) -> Outbox:
        """The worker's outbox (share_writes): each transaction holds the writes and reads of every request that
        asked while the worker was busy, one round trip for all."""
        with self._opening:  # one per process: under gevent, starting its sender yields to other requests
            if self.outbox is None:
                self.outbox = Outbox(self._send_shared, gatherer())
        return self.outbox

    def _send_shared(self, batch: list[Commands]) -> list[Any] | None:
        """One shared transaction: every reply (None: failed). While degraded nothing is sent, so requests queued
        behind a batch that timed out are not held up by another timeout."""
        if self.degraded:
            return None
        return self._execute("shared", [], lambda pipe: [commands(pipe) for commands in batch])

    def _send_waiting(self, op: str) -> None:
        """Send the writes waiting now, before a command that does not go through the request's batch."""
        writes: list[Commands] | None = getattr(self._batch, "writes", None)
        if writes is None:
            return
        if writes and not self.degraded:
            self._batch.writes = []
            self._execute(op, writes)

    def _transaction(self) -> Any:
        """A MULTI ... EXEC pipeline, opened explicitly so an RQ job can join it (RQ asks for that)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.multi()
        return pipe

    def _execute(self, op: str, writes: list[Commands], reads: Commands | None = None) -> list[Any] | None:
        """`writes`, then `reads`, in one transaction: the results of `reads`' commands (None: failed)."""
        pipe = self._transaction()
        try:  # queueing a command can reach Redis too (RQ asks for the server's version once)
            for commands in writes:
                commands(pipe)
            before = len(pipe)
            if reads is not None:
                reads(pipe)
            results = pipe.execute()
        except redis.RedisError as e:
            self.failed(op, e)
            return None
        self.reached()
        return list(results)[before:]

    def _write(self, op: str, commands: Commands) -> bool:
        """Add a write's commands to the request's batch, or send them at once outside a request."""
        writes: list[Commands] | None = getattr(self._batch, "writes", None)
        if writes is not None:
            writes.append(commands)
            return True
        return self._execute(op, [commands]) is not None

    def read(self, op: str, commands: Commands) -> list[Any] | None:
        """Send the writes waiting and these commands in one round trip; these commands' results (None: failed)."""
        writes: list[Commands] | None = getattr(self._batch, "writes", None)
        if writes is not None:
            self._batch.writes = []
        if shared() and self.kind == "redis":  # with the other requests' writes and reads
            return self._shared().ask(writes or [], commands)
        return self._execute(op, writes or [], commands)

    def record(self, call_sid: str | None, **fields: str | int) -> bool:
        """Merge fields into the call's record (TTL refreshed). False when skipped or failed."""
        sid = valid_call_sid(call_sid)
        if sid is None or self.degraded:
            return False

        def commands(pipe: Any) -> None:
            pipe.hset(key("call", sid), mapping={k: str(v) for k, v in fields.items()})
            pipe.expire(key("call", sid), self.ttl)

        return self._write("record", commands)

    def call(self, call_sid: str | None) -> dict[str, str]:
        """The call's record (empty when unknown, or while degraded)."""
        sid = valid_call_sid(call_sid)
        if sid is None or self.degraded:
            return {}
        results = self.read("read", lambda pipe: pipe.hgetall(key("call", sid)))
        if results is None:
            return {}
        raw: dict[bytes, bytes] = results[0]
        return {k.decode(): v.decode() for k, v in raw.items()}

    def enqueue(self, func: Any, *args: Any, later: bool = False) -> bool:
        """Queue an RQ job; True once it is in Redis. `later`: with the request's other writes, for a job whose
        success changes nothing in the answer (True then means queued to be sent)."""
        if self.degraded:
            return False
        options: dict[str, Any] = {"ttl": 86400, "result_ttl": 0, "failure_ttl": 7 * 86400}
        batching = getattr(self._batch, "writes", None) is not None
        if batching and later:
            return self._write("enqueue", lambda pipe: self.queue.enqueue(func, *args, **options, pipeline=pipe))
        if batching:  # the job goes out now, with the writes waiting
            return self.read("enqueue", lambda pipe: self.queue.enqueue(func, *args, **options, pipeline=pipe)) \
                is not None
        try:
            self.queue.enqueue(func, *args, **options)
        except redis.RedisError as e:
            self.failed("enqueue", e)
            return False
        self.reached()
        self._save_state()  # the embedded store runs jobs at once: keep their counts for `ivr report`
        return True

    def _save_state(self) -> None:
        """Write the embedded store's counts to its state file (no call keys); nothing for Redis. Never raises."""
        if self.state_file is not None:
            embedded.save_state(self.client, self.state_file)

    def take_place(self, partner: str, capacity: int, member: str) -> bool:
        """A place for this call at the partner if it is under its cap. Without Redis caps are not enforced."""
        if self.degraded:
            return True
        self._send_waiting("take_place")
        try:
            taken = self._take_place(keys=[key("lease", partner)], args=[capacity, LEASE_TTL, member])
        except redis.RedisError as e:
            self.failed("take_place", e)
            return True
        self.reached()
        return bool(taken)

    def give_back(self, member: str, partners: list[str]) -> None:
        """Release this call's places (the queue or dial action, or the status callback, whichever comes)."""
        if not partners or self.degraded:
            return

        def commands(pipe: Any) -> None:
            for p in partners:
                pipe.zrem(key("lease", p), member)

        self._write("give_back", commands)

    def joined(self, queue: str, call_sid: str | None) -> None:
        """Note that this call waits in the queue (by CallSid, in time order), so a counsellor hears who is next."""
        sid = valid_call_sid(call_sid)
        if sid is None or self.degraded:
            return

        def commands(pipe: Any) -> None:
            pipe.zadd(key("waiting", queue), {sid: time.time()}, nx=True)
            pipe.expire(key("waiting", queue), self.ttl)

        self._write("joined", commands)

    def left(self, queue: str, call_sid: str | None) -> None:
        """Note that this call no longer waits in the queue."""
        sid = valid_call_sid(call_sid)
        if sid is None or not queue or self.degraded:
            return
        self._write("left", lambda pipe: pipe.zrem(key("waiting", queue), sid))

    def count_caller(self, instant: dt.datetime, number: str) -> None:
        """Add the caller of a call that came in at `instant` to its JST day's unique-caller estimate without keeping
        the number (an HMAC under the day's key, fed to a HyperLogLog); withheld numbers are counted apart. The first
        call of a new day in this process folds the days before it."""
        day = jst_day(instant)
        if self.degraded:
            return
        if self._today is None or day > self._today:
            self.fold_ended(day)
            if self.degraded:
                return
        if withheld(number):
            self._write("count_caller", lambda pipe: (pipe.incr(key("withheld", day)),
                                                      pipe.expire(key("withheld", day), AGGREGATE_TTL)))
            self._save_state()
            return
        if self.hash_key is None:
            return  # a reading store (`ivr report`): no key, nothing to count with
        digest = callers.caller_digest(self.hash_key, day, number)
        mark = callers.mark_due(instant, self._marked.get(day), now := time.monotonic())
        self._write("count_caller", lambda pipe: callers.count(pipe, day, digest, mark=mark))
        if mark:
            self._marked = {day: now}
        self._save_state()

    def fold_ended(self, today: str, *, sweep: bool = False) -> list[str]:
        """Fold every day before `today` that still has a HyperLogLog into its plain count (callers.fold_ended); the
        days folded. `sweep` (at start) also finds those an earlier release left, and deletes its day keys."""
        self._send_waiting("fold")
        try:
            ended, folded = callers.fold_ended(self.client, today, sweep=sweep)
        except redis.RedisError as e:
            self.failed("fold", e)
            return []
        self.reached()
        if len(folded) == len(ended):
            self._today = max(today, self._today or today)
        if folded:
            self._save_state()
            log.info("callers_folded", days=folded)
        return folded

    def unique_callers(self, day: str) -> tuple[int, int]:
        """(estimated distinct callers, calls with a withheld number) for a JST day; (0, 0) when unknown. An ended
        day's figure is its folded count (plus any late caller not yet folded)."""
        results = self.read("unique_callers", lambda pipe: callers.read(pipe, day))
        return (0, 0) if results is None else callers.unique(results)

    def counts(self, idents: Sequence[str]) -> list[dict[str, int]] | None:
        """The aggregate counters of each `agg` ident (campaign:day), in one round trip; None when unreachable."""
        if self.degraded:
            return None
        results = self.read("counts", lambda pipe: [pipe.hgetall(key("agg", i)) for i in idents])
        if results is None:
            return None
        return [{k.decode(): int(v) for k, v in raw.items()} for raw in results]

    def number_at(self, name: str) -> int | None:
        """The plain counter at key `name` (0 when absent); None when the store cannot be read."""
        if self.degraded:
            return None
        results = self.read("number_at", lambda pipe: pipe.get(name))
        if results is None:
            return None
        raw = results[0]
        return int(raw) if raw is not None and raw.isdigit() else 0

    def ping(self) -> bool:
        """True when the store answers now (and leaves degraded mode)."""
        self._send_waiting("ping")
        try:
            self.client.ping()
        except redis.RedisError as e:
            self.failed("ping", e)
            return False
        self.reached()
        return True


def connect(settings: Settings, wait: tuple[float, float] = WAIT) -> tuple[redis.Redis, str]:
    """A Redis client for REDIS_URL ("redis"), or an in-process one ("embedded") when it is not set. Behind Sentinel
    (redis+sentinel://) each new connection goes to the master the sentinels name, so after a failover the next
    connection made (the first after a few seconds of degraded mode) writes to the new master. `wait`: seconds to
    connect and to answer (a webhook's short defaults; a command run by hand may wait longer)."""
    address = sentinel_address(settings.redis_url or "")
    timeouts = {"socket_connect_timeout": wait[0], "socket_timeout": wait[1]}
    if address is not None:
        group = redis.sentinel.Sentinel(list(address.sentinels), sentinel_kwargs=timeouts)
        return group.master_for(address.service, db=address.db, username=address.username,
                                password=address.password, health_check_interval=30,
                                max_connections=MAX_REDIS_CONNECTIONS, **timeouts), "redis"
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, health_check_interval=30,
                                      max_connections=MAX_REDIS_CONNECTIONS, **timeouts)
        return client, "redis"
    return fakeredis.FakeRedis(max_connections=MAX_REDIS_CONNECTIONS), "embedded"


def open_store(settings: Settings, metrics: Any = None) -> Store:
    """The store these settings name: Redis at REDIS_URL, else the embedded one with its counts from earlier runs.
    The service's settings carry IVR_HASH_KEY, with which callers are counted; a file-only command's do not."""
    client, kind = connect(settings)
    return Store(client, kind=kind, ttl=settings.call_ttl, metrics=metrics,
                 state_file=embedded.state_file(settings.state_dir),
                 hash_key=settings.hash_key if isinstance(settings, ServiceSettings) else None)


def init_app(app: Any) -> None:
    """Open the store for this app (app.extensions["ivr.store"]) and say which it is."""
    store = open_store(app.extensions["ivr.settings"], app.extensions.get("ivr.metrics"))
    app.extensions["ivr.store"] = store
    kind = store.kind
    if kind == "embedded":
        log.info("store_embedded", detail="REDIS_URL not set: state is kept in this process only")
        reachable = True
    else:
        reachable = store.ping()
        log.info("store_redis", reachable=reachable)
    if reachable:  # the days that ended while no worker counted a caller, and what an earlier release left
        store.fold_ended(jst_day(app.extensions["ivr.clock"].now()), sweep=True)
