"""Redis work shared between requests: under gunicorn's gevent worker, the writes of every request and the reads of
every request that needs replies go out together, in one transaction sent by one greenlet; a request that read gets
the replies to its own commands (Outbox.ask), and each request waits for the transaction that holds its writes
before it answers (a group commit, see ivr/state/store.py).

Before each transaction the sender waits until the worker has nothing else to run (`until_idle`, at most GATHER):
the requests being served meanwhile finish or reach their next read and join it. Sent at once, a transaction held
the writes of 2 or 3 requests under full load, and its fixed cost (a pooled connection, MULTI and EXEC, a round
trip, waking its requests) was paid that often; a lone request on a quiet worker waits for nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog

log = structlog.get_logger("ivr.state")
Commands = Callable[[Any], object]  # adds commands to a redis-py pipeline


class Asked:
    """A request's reads in a shared transaction (Outbox.ask): where their replies fall among the transaction's,
    and those replies once it is done (None: it failed)."""

    __slots__ = ("end", "reads", "replies", "start")

    def __init__(self, reads: Commands):
        self.reads = reads
        self.start = self.end = 0
        self.replies: list[Any] | None = None

    def __call__(self, pipe: Any) -> None:
        self.start = len(pipe)
        self.reads(pipe)
        self.end = len(pipe)


SENT_WAIT = 1.0  # seconds a request waits at most for its writes to be sent (Redis's own timeouts are shorter)
GATHER = 0.002  # seconds a transaction waits at most, under load, for the requests being served to join it
_SHARED = threading.Event()  # set by share_writes(): this process shares Redis round trips across requests
_gather: Callable[[], object] | None = None  # share_writes()'s `gather`: what the sender waits for before a batch


def shared() -> bool:
    """True once share_writes() was called in this process."""
    return _SHARED.is_set()


def gatherer() -> Callable[[], object] | None:
    """What share_writes() said the sender waits for before each batch (None: nothing)."""
    return _gather


def share_writes(enabled: bool = True, gather: Callable[[], object] | None = None) -> None:
    """From now on, in this process, requests' writes and reads are sent together (see above), or no longer
    (`enabled` False); before each batch the sender calls `gather` (until_idle for a gevent worker). For a
    gevent worker: it is called after the worker has patched the standard library."""
    global _gather
    _gather = gather if enabled else None
    if enabled:
        _SHARED.set()
    else:
        _SHARED.clear()


def until_idle() -> None:
    """For a gevent worker: return once its event loop has nothing else to run (every other greenlet waits on a
    socket or a timer), or after GATHER seconds if it never has (gevent.idle, under a gevent.Timeout)."""
    import gevent  # only a gevent worker shares writes; the module is imported without it too

    with gevent.Timeout(GATHER, False):
        gevent.idle()


class Outbox:
    """Writes of finished requests, and reads of requests being served, waiting to go to Redis together, sent by one
    thread (a greenlet under gevent). `send` runs one transaction and answers all its replies (None: it failed). The
    requests of one transaction wait on one event, set once it is done."""

    def __init__(self, send: Callable[[list[Commands]], list[Any] | None],
                 gather: Callable[[], object] | None = None):
        self._send = send
        self._gather = gather
        self._lock = threading.Lock()  # the writes waiting and the event of the transaction that will take them
        self._pending: list[Commands] = []
        self._sent = threading.Event()
        self._ready = threading.Event()
        threading.Thread(target=self._loop, name="ivr-outbox", daemon=True).start()

    def add(self, writes: list[Commands]) -> threading.Event:
        """Queue a request's writes; they go out at the sender's next turn, and the event returned is set once they
        were sent (or failed: the store then says it is degraded)."""
        with self._lock:
            self._pending.extend(writes)
            sent = self._sent
        self._ready.set()
        return sent

    def ask(self, writes: list[Commands], reads: Commands) -> list[Any] | None:
        """Send a request's writes, then its reads, with the next transaction: the reads' replies (None: failed)."""
        asked = Asked(reads)
        if not self.add([*writes, asked]).wait(SENT_WAIT):
            return None
        return asked.replies

    def drain(self) -> None:
        """Send everything waiting now, in the order it came (also at a worker's exit), then tell its requests."""
        with self._lock:
            batch, self._pending = self._pending, []
            sent, self._sent = self._sent, threading.Event()
        try:
            replies = self._send(batch) if batch else []
            if replies is not None:
                for asked in batch:
                    if isinstance(asked, Asked):
                        asked.replies = replies[asked.start:asked.end]
        finally:
            sent.set()

    def _loop(self) -> None:
        while True:
            self._ready.wait()
            if self._gather is not None:
                try:
                    self._gather()
                except Exception:  # a batch is never held back by its wait
                    log.exception("outbox_gather_failed")
            self._ready.clear()
            try:
                self.drain()
            except Exception:  # the sender goes on: its requests were told (drain), the next batch still goes
                log.exception("outbox_send_failed")
