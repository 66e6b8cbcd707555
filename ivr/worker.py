"""Settings for `rq worker -c ivr.worker ivr`: RQ imports this module before it forks a process for each job, so every
job starts with the service's modules loaded instead of importing them again (about a second a job).

Importing it also sets up the worker's logging, as a settings module is meant to: structlog as in the web service,
and RQ's own log lines (a failed job's exception text among them) through the same phone-number scrubber.

RQ takes its connection from here too (give no `--url`): `REDIS_URL` as the service reads it, or, for a
`redis+sentinel://` URL, RQ's `SENTINEL` settings naming the same group, so the worker follows a failover as the web
service does."""

from typing import Any

import ivr.state.jobs  # noqa: F401
from ivr.deployment import sentinel_address
from ivr.logs import configure_worker
from ivr.settings import load_file_settings
from ivr.state.store import WAIT

_settings = load_file_settings()
configure_worker(_settings)
_sentinel = sentinel_address(_settings.redis_url or "")
REDIS_URL: str | None = _settings.redis_url if _sentinel is None else None
SENTINEL: dict[str, Any] | None = None if _sentinel is None else {
    "INSTANCES": list(_sentinel.sentinels), "MASTER_NAME": _sentinel.service, "DB": _sentinel.db,
    "USERNAME": _sentinel.username, "PASSWORD": _sentinel.password, "SOCKET_TIMEOUT": WAIT[1],
    "CONNECTION_KWARGS": {"socket_connect_timeout": WAIT[0]},
    "SENTINEL_KWARGS": {"socket_timeout": WAIT[1], "socket_connect_timeout": WAIT[0]}}
