"""Settings for `rq worker -c ivr.worker`: RQ imports this module before it forks a process for each job, so every
job starts with the service's modules loaded instead of importing them again (about a second a job)."""

import ivr.state.jobs  # noqa: F401
