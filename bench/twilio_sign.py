"""Helpers for bench/incoming.sh: sign a Twilio-style request, check the server, wait for it.

    twilio_sign.py sign URL            -> prints 3 lines: X-Twilio-Signature, form body, CallSid
    twilio_sign.py check URL SIG BODY  -> one signed POST must get 200 + TwiML with <Gather; unsigned must get 403
    twilio_sign.py wait BASE SECONDS   -> poll BASE/healthz until it answers 200
    twilio_sign.py ready BASE KIND     -> BASE/readyz must report store KIND and not degraded

The auth token is read from TWILIO_AUTH_TOKEN (the same value the server was started with); it is never printed.
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

FORM = "application/x-www-form-urlencoded"


def hotline_number() -> str:
    """The number callers dial (Twilio's `To`): the one the project's own Twilio stand-in sends."""
    import inspect

    from ivr.standin import StandIn

    return str(inspect.signature(StandIn).parameters["called"].default)


def params() -> dict[str, str]:
    # Realistic Twilio fields for a ringing inbound call; the caller is the fictional test number.
    return {
        "CallSid": "CA" + secrets.token_hex(16),
        "AccountSid": "AC" + "0" * 32,
        "From": "+819000000000",
        "To": hotline_number(),
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }


def token() -> str:
    value = os.environ.get("TWILIO_AUTH_TOKEN", "")
    if not value:
        sys.exit("twilio_sign.py: TWILIO_AUTH_TOKEN is not set")
    return value


def post(url: str, body: str, signature: str | None) -> tuple[int, str]:
    headers = {"Content-Type": FORM}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def cmd_sign(url: str) -> int:
    from twilio.request_validator import RequestValidator

    p = params()
    signature = RequestValidator(token()).compute_signature(url, p)
    print(signature)
    print(urllib.parse.urlencode(p))
    print(p["CallSid"])
    return 0


def cmd_check(url: str, signature: str, body: str) -> int:
    status, text = post(url, body, signature)
    if status != 200:
        print(f"check: signed POST {url} got HTTP {status}: {text[:200]!r}", file=sys.stderr)
        return 1
    if not text.startswith("<?xml") or "<Gather" not in text:
        print(f"check: signed POST {url} got 200 but not the voice menu: {text[:200]!r}", file=sys.stderr)
        return 1
    size = len(text.encode())
    status, _ = post(url, body, None)
    if status != 403:
        print(f"check: UNSIGNED POST {url} got HTTP {status}, expected 403", file=sys.stderr)
        return 1
    print(f"check: signed POST -> 200, TwiML with <Gather ({size} bytes); same POST unsigned -> 403")
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
    status, text = get(f"{base}/readyz")
    info = json.loads(text) if status == 200 else {}
    if status != 200 or info.get("store") != kind or info.get("degraded"):
        print(f"ready: {base}/readyz -> HTTP {status} {text.strip()} (wanted store={kind}, not degraded)",
              file=sys.stderr)
        return 1
    print(f"ready: store={info['store']} degraded={info['degraded']}")
    return 0


def main(argv: list[str]) -> int:
    match argv:
        case ["sign", url]:
            return cmd_sign(url)
        case ["check", url, signature, body]:
            return cmd_check(url, signature, body)
        case ["wait", base, seconds]:
            return cmd_wait(base, float(seconds))
        case ["ready", base, kind]:
            return cmd_ready(base, kind)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
