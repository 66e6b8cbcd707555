"""The embedded store's state file: without REDIS_URL, the counts (never a call's keys) are kept between runs, each
with its absolute expiry, so `ivr report` can read what earlier `ivr call`s left.

Only counts leave the process: the day's unique-caller HyperLogLog (which the in-process store keeps as the set of
its members, the callers' HMACs) is written as its count, added to the day's folded count. A caller who calls
before and after a restart on the same day is therefore counted twice; nothing in the file can tell whether a
given number called. The file is `<IVR_STATE_DIR>/embedded-state.json`, 0600 in a 0700 directory of this user's
own, replaced atomically (a unique temporary file in the same directory, fsync, rename). Saving and loading are best
effort: a failed write or an unreadable file or entry is logged (by exception type), never raised, so the caller's
answer and a worker's boot do not depend on it. A file an earlier release left (its day key, callers' HMACs, mode
0644) is written again as soon as it is loaded.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import stat
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from ivr.state.keys import AGGREGATE_TTL, CALLERS, CALLERS_COUNT, LEGACY_DAY_KEY, key
from ivr.state.private import private_dir

log = structlog.get_logger("ivr.state")
STATE_FILE = "embedded-state.json"
VARIABLE = "IVR_STATE_DIR"
PRIVATE_FILE = 0o600
# The kinds of key kept between runs: counts and their markers, never a call's record or a caller's HMAC.
PERSISTED = ("agg", "withheld", "folded", CALLERS_COUNT)


def state_file(state_dir: Path) -> Path:
    """Where the embedded store keeps its counts in this state directory."""
    return state_dir / STATE_FILE


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def entries(client: Any) -> list[dict[str, Any]]:
    """What the state file holds for this client: each count with its type, value and absolute expiry (0: none).
    Each open day's HyperLogLog is added to that day's caller count; its members are not written."""
    now, out, callers = time.time(), [], {}
    for kind in PERSISTED:
        for k in client.scan_iter(match=key(kind, "*")):
            ttl = int(client.ttl(k))
            expires = now + ttl if ttl > 0 else 0
            if kind == CALLERS_COUNT:
                callers[_text(k).removeprefix(key(CALLERS_COUNT, ""))] = int(client.get(k) or 0)
            elif _text(client.type(k)) == "hash":
                out.append({"key": _text(k), "type": "hash", "expires": expires,
                            "value": {_text(f): _text(v) for f, v in client.hgetall(k).items()}})
            else:
                out.append({"key": _text(k), "type": "string", "expires": expires, "value": _text(client.get(k))})
    for k in client.scan_iter(match=key(CALLERS, "*")):
        day = _text(k).removeprefix(key(CALLERS, ""))
        callers[day] = callers.get(day, 0) + int(client.pfcount(k))
    out += [{"key": key(CALLERS_COUNT, day), "type": "string", "expires": now + AGGREGATE_TTL, "value": str(n)}
            for day, n in sorted(callers.items())]
    return out


def save_state(client: Any, path: Path) -> bool:
    """Write the embedded store's counts to its state file, atomically and owner-only; False (logged, with the
    exception's type only) when it could not be written. Never raises, whatever went wrong: a webhook that saves
    answers the same whether or not the disk took it."""
    try:
        data = json.dumps(entries(client)).encode()
        private_dir(path.parent, VARIABLE)
        _replace(path, data)
    except Exception as e:  # best effort: the caller's answer never depends on the file
        detail = {"detail": str(e)} if isinstance(e, OSError) else {}  # a path and why; never a value from the file
        log.warning("embedded_state_not_saved", file=str(path), error=type(e).__name__, **detail)
        return False
    return True


def _replace(path: Path, data: bytes) -> None:
    """`path` now holds `data`, or is as it was: a temporary file of its own (0600 from creation), synced, renamed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def load_state(client: Any, path: Path) -> None:
    """Put back what an earlier run kept, except what has expired since; best effort, never raises (a worker boots
    without the counts rather than not at all). A file in a directory that is not this user's own is not read, and
    an entry that is not a count this release writes is skipped (both logged, by exception type only). A file an
    earlier release wrote (its day key, its callers' HMACs) or one others may read is written again at once, 0600,
    with the HMACs as a count and without the key, and the earlier release's `embedded-state.tmp` is removed."""
    try:
        private_dir(path.parent, VARIABLE)
        saved, mode = _read(path)
    except FileNotFoundError:
        _remove_legacy_temporary(path)
        return
    except Exception as e:  # best effort
        detail = {"detail": str(e)} if isinstance(e, OSError) else {}
        log.warning("embedded_state_unreadable", file=str(path), error=type(e).__name__, **detail)
        return
    now, legacy, skipped = time.time(), False, Counter[str]()
    for entry in saved:
        try:
            legacy |= _legacy(entry)
            _put_back(client, entry, now)
        except Exception as e:  # a bad entry is skipped, the others kept
            skipped[type(e).__name__] += 1
    if skipped:
        log.warning("embedded_state_entries_skipped", file=str(path), errors=dict(skipped))
    if legacy or mode != PRIVATE_FILE:
        if save_state(client, path):
            log.info("embedded_state_rewritten", file=str(path), legacy=legacy, mode=f"{mode:04o}")
    _remove_legacy_temporary(path)


def _read(path: Path) -> tuple[list[Any], int]:
    """The state file's entries (a JSON list) and its mode; not through a symbolic link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        saved = json.loads(f.read().decode("utf-8"))
    if not isinstance(saved, list):
        raise TypeError("the state file is not a list of entries")
    return saved, mode


def _legacy(entry: Any) -> bool:
    """True for what only an earlier release wrote: its day key, or a day's callers' HMACs."""
    if not isinstance(entry, dict):
        return False
    name = str(entry.get("key", ""))
    return entry.get("type") in ("bytes", "set") or name.startswith(key(LEGACY_DAY_KEY, ""))


def _put_back(client: Any, entry: Any, now: float) -> None:
    """One entry back in the store, checked (raises on anything this release does not write); expired ones and an
    earlier release's day key are dropped, its callers' HMACs become their number."""
    k, kind, value = entry["key"], entry["type"], entry["value"]
    expires = float(entry.get("expires", 0))
    if not isinstance(k, str) or not math.isfinite(expires):
        raise TypeError("not a key with an expiry")
    if (expires and expires <= now) or kind == "bytes" or k.startswith(key(LEGACY_DAY_KEY, "")):
        return  # expired while the service was not running (gone, as in Redis), or an earlier release's day key
    if kind == "set" and k.startswith(key(CALLERS, "")) and isinstance(value, list):  # an earlier release's HMACs
        k = key(CALLERS_COUNT, k.removeprefix(key(CALLERS, "")))
        client.incrby(k, len(value))
    elif not k.startswith(tuple(key(p, "") for p in PERSISTED)):
        raise KeyError("not a kind of count this release keeps")
    elif kind == "hash" and isinstance(value, dict):
        client.hset(k, mapping={str(f): _count(v) for f, v in value.items()})
    elif kind == "string":
        client.set(k, _count(value))
    else:
        raise TypeError("not a count")
    if expires:
        client.expire(k, max(1, int(expires - now)))


def _count(value: Any) -> str:
    """A count as the store keeps it: a whole number's text (ValueError for anything else, "1.5" included)."""
    if not (isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value)):
        raise ValueError("not a whole number")
    return value


def _remove_legacy_temporary(path: Path) -> None:
    """An earlier release wrote through `embedded-state.tmp` (its day key and callers' HMACs in it): gone."""
    try:
        os.unlink(path.with_suffix(".tmp"))
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("embedded_state_temporary_not_removed", file=str(path.with_suffix(".tmp")),
                    error=type(e).__name__)
