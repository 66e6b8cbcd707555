"""gunicorn settings for `ivr serve` (and the Procfile's web process through it).

Metrics run in prometheus-client's multiprocess mode: the directory is emptied when the master starts, and a dead
worker's live gauges are dropped by child_exit. The metrics and runtime directories are this user's own (0700): one
that is a symbolic link, another user's, or writable by group or others stops the start with one line naming it.
Without REDIS_URL there is one worker, whatever WEB_CONCURRENCY or gunicorn's `-w` ask (each worker would keep an
embedded store of its own), and the master says so.
"""

import gc
import os
import sys
import time

from prometheus_client import multiprocess

from ivr.logs import keep_loggers
from ivr.settings import load_server_settings
from ivr.state.config import request_reload
from ivr.state.outbox import share_writes, until_idle
from ivr.state.private import emptied

_server = load_server_settings()  # read in the master at start and again at each SIGHUP; a wrong value stops it
bind = _server.bind
workers = _server.web_concurrency
if _server.redis_url is None and workers != 1:  # each worker would keep its own counts and overwrite the others' file
    print(f"ivr serve: REDIS_URL is not set: one worker (not the {workers} asked for), with the embedded store",
          file=sys.stderr, flush=True)
    workers = 1
# gevent: each connection is a greenlet of its own, so a connection that is idle, or sends its request a byte at a
# time, holds one of worker_connections and never the worker; requests still run one at a time on the CPU, and the
# worker switches only while one waits on a socket (Redis, the client). The worker monkey-patches the standard
# library when it starts, before it loads the app: redis-py's sockets, the Store's per-request batch
# (threading.local: one per greenlet) and RQ's enqueue on them are cooperative; structlog's and prometheus-client's
# writes are plain file writes that never switch; structlog's bound context is a contextvar, each greenlet's own.
worker_class = "gevent"
worker_connections = 1000  # open connections per worker, idle ones included (each a file descriptor: ulimit -n
# must be above it); beyond them new connections wait in the listen backlog
# A connection's next request, headers included, must arrive within keepalive seconds (the gevent worker times the
# read of each request line and headers with it, the first one too), or the connection is closed. A body is at most
# 64 kB (ivr/web/guard.py), refused with 413 before it is read when its Content-Length says more.
keepalive = 5
timeout = 20  # the worker's own loop must answer the master by then, or it is replaced (Redis calls time out at 0.5 s)
graceful_timeout = 20  # on SIGTERM, requests in flight get this long before the worker is killed
# gunicorn's control socket sits at one path per user: every instance on a host would take it from the others, and
# nothing here uses it (reloads go through SIGHUP and /admin/reload).
control_socket_disable = True
accesslog = None  # the app writes one canonical line per webhook, without caller data
errorlog = "-"
proc_name = "ivr-web"


def on_starting(server):
    """A fresh start begins clean: no stale metrics, and no last good config to hide a broken file behind. A
    directory that is not this user's own is neither emptied nor used: the master stops (exit 2) naming it."""
    for variable, path in (("PROMETHEUS_MULTIPROC_DIR", _server.metrics_dir), ("IVR_RUNTIME_DIR", _server.runtime_dir)):
        if path is not None:
            try:
                emptied(path, variable)
            except OSError as e:
                print(f"ivr serve: not starting: {e}", file=sys.stderr, flush=True)
                sys.exit(2)


def on_reload(server):
    """SIGHUP: the workers about to start take the config files as they are now (or keep the last good ones)."""
    if _server.runtime_dir is not None:
        try:
            request_reload(_server.runtime_dir)
        except OSError as e:  # the new workers refuse the directory too, and say so
            server.log.error("reload not marked: %s", e)


def post_fork(server, worker):
    """Lets /admin/reload ask the master to restart every worker with the new config (IVR_GUNICORN_MASTER)."""
    os.environ["IVR_GUNICORN_MASTER"] = str(server.pid)


def post_worker_init(worker):
    """The worker's requests share their Redis round trips (ivr/state/outbox.py), each transaction sent once the worker
    has nothing else to run: the standard library is patched and the app loaded by now. Its loggers are kept once
    bound (ivr.logs.keep_loggers). What the app loaded (config, menus, libraries: about 100,000 objects) never
    becomes garbage: frozen, it is left out of every later collection; a full collection over it took about 30 ms,
    in which none of the worker's connections was served."""
    share_writes(gather=until_idle)
    keep_loggers()
    gc.freeze()


def post_request(worker, req, environ, resp):
    """Each answered request gives the worker's other greenlets their turn. A request that waits on no socket (no
    Redis read, and no write left to the outbox, whose requests wait for their transaction), on a keep-alive
    connection whose next request has already arrived, would be served again at once, so one connection could keep
    a worker to itself. The wait is a timer (0.1 ms), not sleep(0):
    sleep(0) only queues a callback, and gevent runs queued callbacks before it looks at sockets, so greenlets
    waiting on Redis (the outbox among them) were still left behind (p99 about 300 ms at 32 connections, against
    40-140 ms with the timer, same throughput). Under gevent, time.sleep is gevent's."""
    time.sleep(0.0001)


def worker_exit(server, worker):
    """Writes still waiting in the worker's outbox go out before it exits."""
    store = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("ivr.store")
    if store is not None and store.outbox is not None:
        store.outbox.drain()


def nworkers_changed(server, new_value, old_value):
    """Without REDIS_URL the master keeps one worker, even when `-w` on gunicorn's command line or a SIGTTIN asks
    for more (the embedded store is one process's own)."""
    if _server.redis_url is None and new_value > 1:
        server.log.warning("REDIS_URL is not set: one worker (not the %d asked for), with the embedded store",
                           new_value)
        server.cfg.set("workers", 1)  # a reload spawns cfg.workers new workers before it trims to num_workers
        server.num_workers = 1


def child_exit(server, worker):
    """A dead worker's live gauges leave /metrics."""
    if _server.metrics_dir is not None:
        multiprocess.mark_process_dead(worker.pid)
