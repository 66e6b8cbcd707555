"""gunicorn settings for `ivr serve` (and the Procfile's web process through it).

Metrics run in prometheus-client's multiprocess mode: the directory is wiped when the master starts, and a dead
worker's live gauges are dropped by child_exit.
"""

import os
import shutil

from prometheus_client import multiprocess

from ivr.settings import load_server_settings
from ivr.state.config import request_reload

_server = load_server_settings()  # read in the master at start and again at each SIGHUP; a wrong value stops it
bind = _server.bind
workers = _server.web_concurrency
# gthread with one thread: one request at a time per process (threads would fight over the GIL and lengthen the
# slowest answers), but connections are kept alive and an idle or slow connection waits in the worker's poller
# instead of holding the worker (a sync worker closes every connection and blocks on a silent one until `timeout`).
worker_class = "gthread"
threads = 1
keepalive = 5  # seconds an idle connection is kept for the next webhook
timeout = 20  # the worker's own loop must answer the master by then, or it is replaced (Redis calls time out at 0.5 s)
graceful_timeout = 20
# gunicorn's control socket sits at one path per user: every instance on a host would take it from the others, and
# nothing here uses it (reloads go through SIGHUP and /admin/reload).
control_socket_disable = True
accesslog = None  # the app writes one canonical line per webhook, without caller data
errorlog = "-"
proc_name = "ivr-web"


def on_starting(server):
    """A fresh start begins clean: no stale metrics, and no last good config to hide a broken file behind."""
    for path in (_server.metrics_dir, _server.runtime_dir):
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path, exist_ok=True)


def on_reload(server):
    """SIGHUP: the workers about to start take the config files as they are now (or keep the last good ones)."""
    if _server.runtime_dir is not None:
        request_reload(_server.runtime_dir)


def post_fork(server, worker):
    """Lets /admin/reload ask the master to restart every worker with the new config (IVR_GUNICORN_MASTER)."""
    os.environ["IVR_GUNICORN_MASTER"] = str(server.pid)


def child_exit(server, worker):
    """A dead worker's live gauges leave /metrics."""
    if _server.metrics_dir is not None:
        multiprocess.mark_process_dead(worker.pid)
