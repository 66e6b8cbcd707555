"""Where a webhook's CPU goes: whole calls in-process, straight through the WSGI app (no HTTP server, no wrk).

    python bench/profile_steps.py                       # CPU per request of each step of a call, embedded store
    REDIS_URL=redis://127.0.0.1:6379/0 python bench/profile_steps.py --profile route   # and cProfile one step

The call is the one bench/run-all.sh places (twilio_sign.py `record`: incoming, menu, route, two waits,
queue-done), each call under its own CallSid and every request signed as Twilio signs it. The app is built as
`ivr serve` builds it (create_app: ProxyFix, DispatcherMiddleware, metrics, JSON log lines, here to /dev/null);
set PROMETHEUS_MULTIPROC_DIR to an empty directory to time multiprocess metrics as gunicorn runs them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from twilio_sign import STEPS, call_rows, new_sid, record

BASE = "https://hotline.example.jp"


def environ(path: str, signature: str, body: str) -> dict[str, Any]:
    """The WSGI environ gunicorn would pass for this POST."""
    parts = urllib.parse.urlsplit(BASE + path)
    data = body.encode()
    return {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": parts.path, "QUERY_STRING": parts.query,
        "SERVER_NAME": parts.hostname, "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": parts.netloc, "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(data)), "HTTP_X_TWILIO_SIGNATURE": signature, "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": parts.scheme, "wsgi.version": (1, 0), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.input": io.BytesIO(data),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=1000, help="calls (default 1000)")
    ap.add_argument("--profile", choices=sorted(set(STEPS)), action="append", default=[], help="cProfile this step")
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()

    os.environ.setdefault("TWILIO_AUTH_TOKEN", "bench-" + secrets.token_hex(16))
    os.environ.setdefault("IVR_CLOCK", "2025-05-03T03:00:00+09:00")
    state = tempfile.TemporaryDirectory(prefix="ivr-profile-state-")  # the embedded store's counts, if it is used
    os.environ.setdefault("IVR_STATE_DIR", state.name)
    os.environ["IVR_LOG_FORMAT"] = "json"
    log = open(os.devnull, "w")  # the JSON log lines are still written (and cost) as under gunicorn
    sys.stderr.flush()
    os.dup2(log.fileno(), 2)
    from twilio.request_validator import RequestValidator

    from ivr.app import create_app
    from ivr.tools.standin import InProcess

    token = os.environ["TWILIO_AUTH_TOKEN"]
    app = create_app()
    template = record(InProcess(app), BASE, token)
    validator = RequestValidator(token)
    calls = [[environ(*row[1:]) for row in call_rows(validator, template, new_sid())] for _ in range(args.n)]
    print(f"store: {app.extensions['ivr.store'].kind}; multiprocess metrics: "
          f"{bool(os.environ.get('PROMETHEUS_MULTIPROC_DIR'))}; {args.n} calls")

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        if not status.startswith("200"):
            raise SystemExit(f"unexpected {status}")

    warm = max(1, args.n // 10)
    spent: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    profiles = {name: cProfile.Profile() for name in args.profile}
    for n, call in enumerate(calls):
        for step, env in zip(STEPS, call, strict=True):
            prof = profiles.get(step) if n >= warm else None
            t0 = time.process_time()
            if prof:
                prof.enable()
            b"".join(app(env, start_response))
            if prof:
                prof.disable()
            if n >= warm:
                spent[step] += time.process_time() - t0
                count[step] += 1
    total = 0.0
    for step in dict.fromkeys(STEPS):
        per = spent[step] / count[step] * 1e6
        total += per * STEPS.count(step)
        print(f"{step:12s} {per:7.0f} us CPU per request")
    print(f"{'whole call':12s} {total:7.0f} us CPU ({len(STEPS)} requests; this process only, not Redis's)")
    for step, prof in profiles.items():
        for key in ("tottime", "cumulative"):
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats(key).print_stats(args.top)
            print(f"--- {step}, by {key}\n{s.getvalue()}")
    state.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
