"""Under attack: signed calls at light load while idle and trickling connections are held open, then a 4 MB body.

    python bench/attack.py BASE [--idle 500] [--trickle 50] [--rate 20] [--seconds 20]

Against a running `ivr serve` at BASE (TWILIO_AUTH_TOKEN in the environment is the server's): opens IDLE
connections that never send a byte and TRICKLE connections that send a request's headers one byte a second (each
reopened when the server closes it), then places signed /voice/incoming and /voice/fallback requests at RATE a second
for SECONDS, each on a fresh connection as Twilio makes them, and prints p50, p99, the slowest and how many took over
1 s. Last, it sends the headers of a 4 MB body with a junk signature and times the 413. bench/run-all.sh runs it.
Targets (issue: serving that slow clients cannot stall): p99 under 100 ms and none past 1 s; the 413 in under 0.5 s.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import sys
import threading
import time
import urllib.parse

from twilio.request_validator import RequestValidator

HEADERS = b"POST /voice/incoming HTTP/1.1\r\nHost: attacker\r\nX-Twilio-Signature: junk\r\nContent-Length: 10\r\n"


def connect(host: str, port: int) -> socket.socket:
    return socket.create_connection((host, port), timeout=5)


def trickle(host: str, port: int, n: int, stop: threading.Event, reopened: list[int]) -> None:
    """N connections each sending HEADERS a byte a second, reopened when the server closes one."""
    conns = [(connect(host, port), 0) for _ in range(n)]
    while not stop.wait(1.0):
        for i, (sock, at) in enumerate(conns):
            try:
                sock.send(HEADERS[at:at + 1])
                conns[i] = (sock, (at + 1) % len(HEADERS))
            except OSError:  # closed by the server (its header timeout): the attacker comes back
                sock.close()
                reopened[0] += 1
                conns[i] = (connect(host, port), 0)
    for sock, _ in conns:
        sock.close()


def signed_post(validator: RequestValidator, base: str, path: str, params: dict[str, str]) -> tuple[int, float]:
    """One signed POST on a fresh connection: (status, seconds)."""
    parts = urllib.parse.urlsplit(base)
    body = urllib.parse.urlencode(params)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "X-Twilio-Signature": validator.compute_signature(base + path, params)}
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        conn.request("POST", path, body, headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status, time.perf_counter() - t0
    finally:
        conn.close()


def big_body(host: str, port: int) -> tuple[bytes, float]:
    """The headers of a 4 MB form with a junk signature: the answer's first bytes and how long they took."""
    with connect(host, port) as sock:
        t0 = time.perf_counter()
        sock.sendall(b"POST /voice/incoming HTTP/1.1\r\nHost: attacker\r\nX-Twilio-Signature: junk\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4194304\r\n\r\n")
        sock.sendall(b"a" * 65536)  # the start of the body, as an uploader would send it
        head = sock.recv(4096)
        return head, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--trickle", type=int, default=50)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    base = args.base.rstrip("/")
    parts = urllib.parse.urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])

    idle = [connect(host, port) for _ in range(args.idle)]
    stop, reopened = threading.Event(), [0]
    slow = threading.Thread(target=trickle, args=(host, port, args.trickle, stop, reopened), daemon=True)
    slow.start()
    time.sleep(2)  # every attacking connection open and accepted

    times: list[float] = []
    bad: list[int] = []
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < args.seconds:
        due = start + n / args.rate
        time.sleep(max(0.0, due - time.perf_counter()))
        params = {"CallSid": f"CA{os.urandom(16).hex()}", "AccountSid": "AC" + "0" * 32, "From": "anonymous",
                  "To": "+81120494949", "CallStatus": "ringing"}
        path = "/voice/incoming" if n % 2 == 0 else "/voice/fallback"
        status, took = signed_post(validator, base, path, params)
        times.append(took)
        if status != 200:
            bad.append(status)
        n += 1
    head, refused_in = big_body(host, port)
    stop.set()
    slow.join(timeout=5)
    for sock in idle:
        sock.close()

    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    over = sum(t > 1.0 for t in times)
    print(f"attack: {args.idle} idle + {args.trickle} trickling connections held open ({reopened[0]} trickling "
          f"reopened after the server closed them)")
    print(f"attack: {len(times)} signed requests at {args.rate:g}/s: p50 {statistics.median(times) * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms, slowest {times[-1] * 1000:.1f} ms, over 1 s: {over}, not 200: {len(bad)}")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    print(f"attack: 4 MB body with a junk signature: {status_line} "
          f"in {refused_in * 1000:.1f} ms")
    refused = int(head.startswith(b"HTTP/1.1 413"))
    print(f"BENCH attack_p99_ms={p99 * 1000:.1f} attack_max_ms={times[-1] * 1000:.1f} attack_over_1s={over} "
          f"attack_bad={len(bad)} big_body_ms={refused_in * 1000:.1f} big_body_413={refused}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
