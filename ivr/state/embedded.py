"""The embedded store's state file: without REDIS_URL, the counts (never a call's keys) are kept between runs, each
with its absolute expiry, so `ivr report` can read what earlier `ivr call`s left and the day's HMAC key is discarded
on time there too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import structlog

from ivr.state.keys import key

log = structlog.get_logger("ivr.state")

# The kinds of key kept between runs: counts and their markers, never a call's record.
PERSISTED = ("agg", "callers", "withheld", "folded", "daykey")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def save_state(client: Any, state_file: Path) -> None:
    """Write the embedded store's counts (never a call's keys) to its state file, atomically."""
    out = []
    for kind in PERSISTED:
        for k in client.scan_iter(match=key(kind, "*")):
            ttl = int(client.ttl(k))
            t = _text(client.type(k))
            if t == "string" and kind == "daykey":
                raw = client.get(k)
                value_key = raw.hex() if isinstance(raw, bytes) else ""
                out.append({"key": _text(k), "type": "bytes", "expires": time.time() + ttl, "value": value_key})
                continue
            if t == "hash":
                value: Any = {_text(f): _text(v) for f, v in client.hgetall(k).items()}
            elif t == "string":
                value = _text(client.get(k))
            else:  # the embedded HyperLogLog keeps its (HMAC) members
                value = sorted(_text(m) for m in client.smembers(k))
            out.append({"key": _text(k), "type": t, "expires": time.time() + ttl if ttl > 0 else 0,
                        "value": value})
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(out), encoding="utf-8")
    tmp.replace(state_file)


def load_state(client: Any, path: Path) -> None:
    """Put back what an earlier run kept, except what has expired since."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError) as e:
        log.warning("embedded_state_unreadable", file=str(path), error=type(e).__name__)
        return
    now = time.time()
    for entry in entries:
        k, expires = entry["key"], float(entry.get("expires", 0))
        if expires and expires <= now:
            continue  # expired while the service was not running: gone, as in Redis
        if entry["type"] == "hash":
            client.hset(k, mapping=entry["value"])
        elif entry["type"] == "string":
            client.set(k, entry["value"])
        elif entry["type"] == "bytes":
            client.set(k, bytes.fromhex(entry["value"]))
        else:
            client.pfadd(k, *entry["value"])
        if expires:
            client.expire(k, max(1, int(expires - now)))
