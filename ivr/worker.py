"""Settings for `rq worker -c ivr.worker`: RQ imports this module before it forks a process for each job, so every
job starts with the service's modules loaded instead of importing them again (about a second a job).

Importing it also sets up the worker's logging, as a settings module is meant to: structlog as in the web service,
and RQ's own log lines (a failed job's exception text among them) through the same phone-number scrubber."""

import ivr.state.jobs  # noqa: F401
from ivr.logs import configure_worker
from ivr.settings import load_file_settings

configure_worker(load_file_settings())
