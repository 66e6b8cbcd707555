"""Writes shared between requests: under gunicorn's gevent worker, the Redis writes of requests that read nothing
go out together, in one transaction sent by one greenlet (see ivr/state/store.py)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

Commands = Callable[[Any], object]  # adds commands to a redis-py pipeline
_SHARED = threading.Event()  # set by share_writes(): this process batches writes across requests


def shared() -> bool:
    """True once share_writes() was called in this process."""
    return _SHARED.is_set()


def share_writes(enabled: bool = True) -> None:
    """From now on, in this process, the writes of requests that read nothing are sent together (see above), or no
    longer (`enabled` False). For a gevent worker: it is called after the worker has patched the standard library."""
    if enabled:
        _SHARED.set()
    else:
        _SHARED.clear()


class Outbox:
    """Writes of finished requests waiting to go to Redis together, sent by one thread (a greenlet under gevent).
    Thread-safe: a deque, appended to and emptied from either end."""

    def __init__(self, send: Callable[[list[Commands]], object]):
        self._send = send
        self._pending: deque[Commands] = deque()
        self._ready = threading.Event()
        threading.Thread(target=self._loop, name="ivr-outbox", daemon=True).start()

    def add(self, writes: list[Commands]) -> None:
        """Queue a request's writes; they go out at the sender's next turn."""
        self._pending.extend(writes)
        self._ready.set()

    def drain(self) -> None:
        """Send everything waiting now, in the order it came (also at a worker's exit)."""
        batch: list[Commands] = []
        while self._pending:
            batch.append(self._pending.popleft())
        if batch:
            self._send(batch)

    def _loop(self) -> None:
        while True:
            self._ready.wait()
            self._ready.clear()
            self.drain()
