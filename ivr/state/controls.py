"""Live controls an operator sets during a campaign: pause a partner, close an option, play an announcement, reload
every instance. Kept in Redis so every instance obeys within a second; each change names who made it and why, and
goes to the audit log (a Redis list, newest first, and one structlog line).

Each process keeps the last controls it read, and reads them again at most every REFRESH seconds; while the store
cannot be read it keeps the last ones it saw (a paused partner stays paused). A control set `--for`/`--until` a time
is dropped when that time passes (the writer's wall clock, in epoch seconds: the same on every instance).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import redis
import structlog

from ivr.state.keys import key

log = structlog.get_logger("ivr.controls")
Kind = Literal["pause", "close", "announce"]
KINDS: tuple[Kind, ...] = ("pause", "close", "announce")
STATE = key("controls", "state")  # hash: "<kind>:<target>" -> the control as JSON
AUDIT = key("controls", "audit")  # list: every change as JSON, newest first
RELOAD = key("controls", "reload")  # the latest reload asked for, as JSON
CONTROL_TTL = 60 * 86400  # the controls and the audit log outlive a campaign; refreshed at every change
AUDIT_KEEP = 10000  # changes kept in the audit log
REPORT_TTL = 86400  # how long instances' answers to a reload are kept
REFRESH = 0.5  # seconds between reads of the controls in one process: obeyed everywhere within a second
RETRY_AFTER = 2.0  # seconds an unreadable store is left alone


def field_of(kind: Kind, target: str) -> str:
    """A control's field in the controls hash: one announcement at a time, one control per kind and target."""
    return f"{kind}:{target}" if kind != "announce" else "announce:"


@dataclass(frozen=True)
class Control:
    """One control in force: what, on what, who set it and why, when (epoch seconds) and until when (None: until
    undone)."""

    kind: Kind
    target: str
    by: str
    why: str
    at: float
    until: float | None = None

    def active(self, now: float) -> bool:
        """Still in force at `now` (its --for/--until has not passed)."""
        return self.until is None or now < self.until

    @property
    def field(self) -> str:
        """Its field in the controls hash."""
        return field_of(self.kind, self.target)


@dataclass(frozen=True)
class Snapshot:
    """The controls one process last read, and whether that read is current (False: the store could not be read
    and these are the last ones seen)."""

    controls: tuple[Control, ...] = ()
    reload: Mapping[str, Any] | None = None
    current: bool = True

    def in_force(self, now: float) -> list[Control]:
        """The controls still in force at `now`."""
        return [c for c in self.controls if c.active(now)]

    def paused(self, now: float) -> frozenset[str]:
        """Partner ids paused now."""
        return frozenset(c.target for c in self.in_force(now) if c.kind == "pause")

    def closed(self, now: float) -> frozenset[str]:
        """Option ids closed now."""
        return frozenset(c.target for c in self.in_force(now) if c.kind == "close")

    def announcement(self, now: float) -> Control | None:
        """The announcement playing now, if any."""
        return next((c for c in self.in_force(now) if c.kind == "announce"), None)


def _decode(raw: bytes | str) -> Control | None:
    try:
        data = json.loads(raw)
        return Control(data["kind"], str(data["target"]), str(data["by"]), str(data.get("why", "")),
                       float(data["at"]), None if data.get("until") is None else float(data["until"]))
    except (ValueError, KeyError, TypeError):
        return None


def instance_id() -> str:
    """This process as a reload report names it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Controls:
    """The live controls, read from and written to the shared store, cached per process."""

    def __init__(self, client: redis.Redis, *, degraded: Callable[[], bool] = lambda: False,
                 wall: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        self.client = client
        self.degraded = degraded  # the store's own back-off: no read while it is known down
        self.wall = wall
        self.monotonic = monotonic
        self._kept = Snapshot()
        self._next_read = 0.0
        self._seen_reload: str | None = None

    # -- reading ------------------------------------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The controls now: read from the store at most every REFRESH seconds, else the last read (kept, marked
        not current, while the store cannot be read)."""
        now = self.monotonic()
        if now < self._next_read:
            return self._kept
        self._next_read = now + REFRESH  # one read at a time: requests arriving meanwhile keep the last snapshot
        if self.degraded():
            self._kept = Snapshot(self._kept.controls, self._kept.reload, current=False)
            return self._kept
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(STATE)
            pipe.get(RELOAD)
            raw, reload = pipe.execute()
        except redis.RedisError as e:
            if self._kept.current:
                log.warning("controls_unreadable", error=type(e).__name__, keeping=len(self._kept.controls))
            self._next_read = now + RETRY_AFTER
            self._kept = Snapshot(self._kept.controls, self._kept.reload, current=False)
            return self._kept
        controls = tuple(c for c in map(_decode, raw.values()) if c is not None)
        asked = None
        if reload:
            try:
                asked = json.loads(reload)
            except ValueError:
                asked = None
        self._kept = Snapshot(tuple(sorted(controls, key=lambda c: c.at)), asked, current=True)
        return self._kept

    def note_reloads(self) -> None:
        """Note the latest reload asked for so far: this process has just loaded its config, so it needs only the
        ones asked from now on. While the store cannot be read, its first look does the noting."""
        try:
            self._seen_reload = self.latest_reload() or ""
        except redis.RedisError:
            return

    def reload_due(self, snapshot: Snapshot) -> Mapping[str, Any] | None:
        """A reload asked for since this process last looked (None: none)."""
        asked = snapshot.reload
        ident = str(asked.get("id")) if asked else ""
        if self._seen_reload is None:  # the store was down at start: take the latest as already loaded
            self._seen_reload = ident
            return None
        if not ident or ident == self._seen_reload:
            return None
        self._seen_reload = ident
        return asked

    def audit(self, count: int = 20) -> list[dict[str, Any]]:
        """The latest changes, newest first."""
        raw = self.client.lrange(AUDIT, 0, max(0, count - 1))
        out = []
        for item in raw:
            try:
                out.append(json.loads(item))
            except ValueError:
                continue
        return out

    # -- changing -----------------------------------------------------------------------------------------------
    def _audit(self, pipe: Any, action: str, target: str, by: str, why: str, **more: Any) -> dict[str, Any]:
        entry = {"action": action, "target": target, "by": by, "why": why, "at": self.wall(), **more}
        pipe.lpush(AUDIT, json.dumps(entry, ensure_ascii=False))
        pipe.ltrim(AUDIT, 0, AUDIT_KEEP - 1)
        pipe.expire(AUDIT, CONTROL_TTL)
        return entry

    def set(self, kind: Kind, target: str, by: str, why: str = "", until: float | None = None) -> Control:
        """Put a control in force (replacing one on the same target), with who and why, audited. Raises RedisError
        when the store cannot be written."""
        control = Control(kind, target, by, why, self.wall(), until)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(STATE, control.field, json.dumps(asdict(control), ensure_ascii=False))
        pipe.expire(STATE, CONTROL_TTL)
        entry = self._audit(pipe, kind, target, by, why, until=until)
        pipe.execute()
        log.info("control_changed", **entry)
        self._next_read = 0.0
        return control

    def clear(self, kind: Kind, target: str, by: str, why: str = "") -> bool:
        """Undo a control (resume, open, clear the announcement), audited; False when none was set. Raises
        RedisError when the store cannot be written."""
        field = field_of(kind, target)
        undo = {"pause": "resume", "close": "open", "announce": "announce-clear"}[kind]
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(STATE, field)
        entry = self._audit(pipe, undo, target, by, why)
        removed = pipe.execute()[0]
        log.info("control_changed", **entry, was_set=bool(removed))
        self._next_read = 0.0
        return bool(removed)

    def expired(self, now: float) -> list[Control]:
        """Drop the controls whose time has passed from the store (audited as expired); the ones dropped."""
        gone = [c for c in self.snapshot().controls if not c.active(now)]
        for c in gone:
            pipe = self.client.pipeline(transaction=True)
            pipe.hdel(STATE, c.field)
            self._audit(pipe, f"{c.kind}-expired", c.target, c.by, c.why)
            if pipe.execute()[0]:
                log.info("control_expired", kind=c.kind, target=c.target, by=c.by)
        return gone

    # -- reloading everywhere -----------------------------------------------------------------------------------
    def request_reload(self, by: str, why: str = "") -> str:
        """Ask every instance to reload its config; the id their reports are filed under."""
        ident = uuid.uuid4().hex[:12]
        pipe = self.client.pipeline(transaction=True)
        pipe.set(RELOAD, json.dumps({"id": ident, "by": by, "why": why, "at": self.wall()}), ex=CONTROL_TTL)
        entry = self._audit(pipe, "reload", "*", by, why, id=ident)
        pipe.execute()
        log.info("control_changed", **entry)
        return ident

    def latest_reload(self) -> str | None:
        """The id of the latest reload asked for, if any. Raises RedisError."""
        raw = self.client.get(RELOAD)
        try:
            return str(json.loads(raw)["id"]) if raw else None
        except (ValueError, KeyError, TypeError):
            return None

    def report_reload(self, ident: str, result: str, digest: str, details: list[str]) -> None:
        """File this process's answer to a reload: applied, unchanged or refused, with the config hash now
        serving. Best effort."""
        where = key("reload", ident)
        body = json.dumps({"result": result, "hash": digest, "details": details[:20], "at": self.wall()})
        try:
            pipe = self.client.pipeline(transaction=True)
            pipe.hset(where, instance_id(), body)
            pipe.expire(where, REPORT_TTL)
            pipe.execute()
        except redis.RedisError as e:
            log.warning("reload_report_failed", error=type(e).__name__)

    def reload_reports(self, ident: str) -> dict[str, dict[str, Any]]:
        """Every instance's answer to a reload so far, by instance."""
        raw: dict[bytes, bytes] = self.client.hgetall(key("reload", ident))  # type: ignore[assignment]
        return {k.decode(): json.loads(v) for k, v in raw.items()}


def init_app(app: Any) -> None:
    """The live controls of this app's store (app.extensions["ivr.controls"])."""
    store = app.extensions["ivr.store"]
    controls = app.extensions["ivr.controls"] = Controls(store.client, degraded=lambda: store.degraded)
    if not store.degraded:
        controls.note_reloads()
