"""Helpers for bench/run-all.sh: Twilio-signed request tables for wrk, checks of a running server, waiting for it.

    twilio_sign.py record BASE OUT.json          one call through the server (the project's Twilio stand-in, over
                                                 HTTP): incoming, menu (3), route (language 1: Enqueue), two waits,
                                                 queue-done; every answer checked; the requests kept as a template
    twilio_sign.py tables OUT.json DIR MODE N T  signed request tables for wrk_signed.lua, one file per wrk thread
                                                 (MODE: a step name, `calls` or `waiting`; N calls or callers)
    twilio_sign.py queue OUT.json                the queue the call waits in
    twilio_sign.py check OUT.json                a fresh call, step by step: each signed request -> 200 TwiML with
                                                 its verb; the same request unsigned, or signed with another token,
                                                 -> 403
    twilio_sign.py wait BASE SECONDS             poll BASE/healthz until it answers 200
    twilio_sign.py ready BASE KIND               BASE/readyz (details, with IVR_ADMIN_TOKEN) must report store KIND
                                                 and not degraded

Every table row is signed with RequestValidator for the exact URL wrk requests and carries its own CallSid
(distinct per call and per waiting caller). The auth token is read from TWILIO_AUTH_TOKEN (the value the server was
started with); it is never printed or written to a table.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

FORM = "application/x-www-form-urlencoded"
# The call every benchmark places: the foreign-language path, so the menu key (3: a second menu) and the route
# (the language key: Enqueue) are separate requests; a bridged queue ends it.
KEYS = ["3", "1"]
STEPS = ("incoming", "menu", "route", "wait", "wait", "queue_done")
# The verb each step's answer must contain (wrk_signed.lua checks every answer, `check` a fresh call's).
EXPECT = {"incoming": "<Gather", "menu": "<Gather", "route": "<Enqueue", "wait": "<Pause", "queue_done": "<Hangup"}
WAIT_ROUND = 20  # seconds between two polls of a waiting caller's waitUrl


def token() -> str:
    value = os.environ.get("TWILIO_AUTH_TOKEN", "")
    if not value:
        sys.exit("twilio_sign.py: TWILIO_AUTH_TOKEN is not set")
    return value


def new_sid() -> str:
    return "CA" + secrets.token_hex(16)


# -- the template: one real call -------------------------------------------------------------------------------
class Recorder:
    """A stand-in transport that keeps every request it passes on."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.seen: list[tuple[str, dict[str, str]]] = []

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
        self.seen.append((url, dict(params)))
        return self.inner.post(url, params, signature)


def record(transport: Any, base: str, auth_token: str) -> list[dict[str, Any]]:
    """Place one call through `transport` and return its webhook requests as [{step, url, params}] (no status)."""
    from ivr.tools.standin import StandIn

    rec = Recorder(transport)
    result = StandIn(rec, auth_token, base, keys=list(KEYS), wait_rounds=2, queue_result="bridged").call()
    if result.stranded or result.fallback_used or result.connected is None:
        raise SystemExit(f"record: the call did not reach a queue cleanly: {[str(e) for e in result.events]}")
    steps = [{"url": u, "params": p} for u, p in rec.seen if urllib.parse.urlsplit(u).path != "/voice/status"]
    if len(steps) != len(STEPS):
        raise SystemExit(f"record: expected {len(STEPS)} requests, got {[s['url'] for s in steps]}")
    for step, name in zip(steps, STEPS, strict=True):
        step["step"] = name
    return steps


def cmd_record(base: str, out: str) -> int:
    from ivr.tools.standin import OverHttp

    steps = record(OverHttp(), base.rstrip("/"), token())
    Path(out).write_text(json.dumps(steps, indent=1), encoding="utf-8")
    for s in steps:
        print(f"record: {s['step']:10s} {urllib.parse.urlsplit(s['url']).path}?{urllib.parse.urlsplit(s['url']).query}")
    return 0


def load_template(path: str) -> list[dict[str, Any]]:
    return list(json.loads(Path(path).read_text(encoding="utf-8")))


# -- signed tables -------------------------------------------------------------------------------------------
def signed(validator: Any, url: str, params: dict[str, str]) -> tuple[str, str, str]:
    """(path with query, signature, form body) of one request as Twilio would send it."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return path, validator.compute_signature(url, params), urllib.parse.urlencode(params)


def call_rows(validator: Any, template: list[dict[str, Any]], sid: str) -> list[tuple[str, str, str, str]]:
    """One call's requests, in order, as (step, path, signature, body), all under the CallSid `sid`."""
    return [(s["step"], *signed(validator, s["url"], {**s["params"], "CallSid": sid})) for s in template]


def table_row(number: int, row: tuple[str, str, str, str]) -> tuple[str, ...]:
    """A row of a wrk table: call number, what the answer must contain, path, signature, body."""
    step, *request = row
    return (str(number), EXPECT[step], *request)


def waiting_rows(validator: Any, template: list[dict[str, Any]], sids: list[str], rounds: int,
                 max_wait: int) -> list[list[tuple[str, str, str, str]]]:
    """Each waiting caller's polls of its waitUrl, round by round: QueueTime grows by 20 s a round and stays under
    the partner's maximum wait (so the answer is a wait round, not <Leave>); QueuePosition is the caller's place."""
    wait = next(s for s in template if s["step"] == "wait")
    span = max(1, max_wait - WAIT_ROUND * rounds)
    out = []
    for i, sid in enumerate(sids):
        base = (i * 7) % span
        polls = []
        for r in range(rounds):
            params = {**wait["params"], "CallSid": sid, "QueueTime": str(base + WAIT_ROUND * r),
                      "QueuePosition": str(i + 1), "CurrentQueueSize": str(len(sids))}
            polls.append(("wait", *signed(validator, wait["url"], params)))
        out.append(polls)
    return out


def max_wait(template: list[dict[str, Any]]) -> int:
    """The maximum wait of the partner the template's call waits for, from the config the server runs."""
    from ivr.settings import load_settings
    from ivr.state.config import load

    settings = load_settings()
    routing = load(settings.menu_file, settings.routing_file, settings.partners_file).routing
    partner = urllib.parse.parse_qs(urllib.parse.urlsplit(queue_step(template)["url"]).query)["p"][0]
    return routing.partners[partner].max_wait


def queue_step(template: list[dict[str, Any]]) -> dict[str, Any]:
    return next(s for s in template if s["step"] == "queue_done")


def write_tables(outdir: Path, per_thread: list[list[tuple[str, ...]]]) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    for t, rows in enumerate(per_thread):
        with (outdir / f"t{t}.tsv").open("w", encoding="utf-8") as f:
            for row in rows:
                f.write("\t".join(row) + "\n")


def cmd_tables(template_file: str, outdir: str, mode: str, n: int, threads: int, extra: list[str]) -> int:
    """Write DIR/t<k>.tsv for each wrk thread k (rows: see table_row), and DIR/sids.txt.

    MODE a step name: N rows of that step, each its own CallSid, dealt round-robin to the threads;
    MODE calls: N whole calls (six rows each, in order), whole calls dealt to the threads;
    MODE waiting: N waiting callers' polls, ROUNDS (first extra argument, default 3) per caller, in the order they
    fall due: caller i polls at i * 20 s / N and every 20 s after; thread k sends every threads-th poll. The
    callers' CallSids come from the file named by the second extra argument (the enqueued callers' sids.txt)."""
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(token())
    template = load_template(template_file)
    per_thread: list[list[tuple[str, ...]]] = [[] for _ in range(threads)]
    if mode == "calls":
        for c in range(n):
            per_thread[c % threads] += [table_row(c, row) for row in call_rows(validator, template, new_sid())]
    elif mode == "waiting":
        rounds = int(extra[0]) if extra else 3
        sids = Path(extra[1]).read_text().split()[:n] if len(extra) > 1 else [new_sid() for _ in range(n)]
        polls = waiting_rows(validator, template, sids, rounds, max_wait(template))
        k = 0
        for r in range(rounds):
            for i, caller in enumerate(polls):
                per_thread[k % threads].append(table_row(i, caller[r]))
                k += 1
    else:
        step = next((s for s in template if s["step"] == mode), None)
        if step is None:
            raise SystemExit(f"tables: no step '{mode}' in {template_file}")
        for c in range(n):
            params = {**step["params"], "CallSid": new_sid()}
            per_thread[c % threads].append(table_row(c, (mode, *signed(validator, step["url"], params))))
    write_tables(Path(outdir), per_thread)
    with (Path(outdir) / "sids.txt").open("w", encoding="utf-8") as f:  # e.g. the enqueued callers, to wait
        for sid in dict.fromkeys(urllib.parse.parse_qs(row[4])["CallSid"][0] for rows in per_thread for row in rows):
            f.write(sid + "\n")
    print(f"tables: {sum(map(len, per_thread))} signed requests ({mode}) in {threads} files under {outdir}")
    return 0


# -- checks of a running server --------------------------------------------------------------------------------
def post(url: str, body: str, signature: str | None) -> tuple[int, str, str]:
    headers = {"Content-Type": FORM}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8", "replace")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def cmd_check(template_file: str) -> int:
    """A fresh call, signed step by step; each answer 200 TwiML with its verb, each forgery 403."""
    from twilio.request_validator import RequestValidator

    from ivr.tools.standin import twiml_problem

    template = load_template(template_file)
    base = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(template[0]["url"]))
    rows = call_rows(RequestValidator(token()), template, new_sid())
    forger = RequestValidator("not-" + token())
    for (step, path, signature, body), s in zip(rows, template, strict=True):
        status, ctype, text = post(base + path, body, signature)
        problem = twiml_problem(status, ctype, text.encode())
        if problem or EXPECT[step] not in text:
            print(f"check: {step}: signed POST {path} -> {problem or 'no ' + EXPECT[step]}: {text[:200]!r}",
                  file=sys.stderr)
            return 1
        for label, sig in (("unsigned", None), ("another token", signed(forger, s["url"], s["params"])[1])):
            status, _, _ = post(base + path, body, sig)
            if status != 403:
                print(f"check: {step}: {label} POST {path} got HTTP {status}, expected 403", file=sys.stderr)
                return 1
        print(f"check: {step:10s} signed -> 200 {ctype.split(';')[0]} with {EXPECT[step]} ({len(text.encode())} B);"
              " unsigned -> 403; another token -> 403")
    return 0


def cmd_wait(base: str, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        try:
            status, _ = get(f"{base}/healthz")
            if status == 200:
                return 0
            last = f"HTTP {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    print(f"wait: {base}/healthz not ready after {seconds}s ({last})", file=sys.stderr)
    return 1


def cmd_ready(base: str, kind: str) -> int:
    """/readyz with the admin token (IVR_ADMIN_TOKEN, as the server was started with): its details name the store."""
    req = urllib.request.Request(f"{base}/readyz",
                                 headers={"Authorization": f"Bearer {os.environ.get('IVR_ADMIN_TOKEN', '')}"})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            status, text = r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode("utf-8", "replace")
    store = (json.loads(text).get("details") or {}).get("store", {}) if status == 200 else {}
    if store.get("kind") != kind or store.get("degraded") is not False:
        print(f"ready: {base}/readyz -> HTTP {status} {text.strip()} (wanted details.store kind={kind}, not degraded;"
              " is IVR_ADMIN_TOKEN the server's?)", file=sys.stderr)
        return 1
    print(f"ready: store={store['kind']} degraded={store['degraded']}")
    return 0


def main(argv: list[str]) -> int:
    match argv:
        case ["record", base, out]:
            return cmd_record(base, out)
        case ["tables", template, outdir, mode, n, threads, *extra]:
            return cmd_tables(template, outdir, mode, int(n), int(threads), extra)
        case ["check", template]:
            return cmd_check(template)
        case ["queue", template]:  # the queue the template's call waits in
            print(urllib.parse.parse_qs(urllib.parse.urlsplit(queue_step(load_template(template))["url"]).query)["q"][0])
            return 0
        case ["wait", base, seconds]:
            return cmd_wait(base, float(seconds))
        case ["ready", base, kind]:
            return cmd_ready(base, kind)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
