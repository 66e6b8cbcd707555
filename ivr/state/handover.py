"""What the counsellors' line keeps between a counsellor's call and a caller's: who took whom, and transfers.

Everything is named by CallSid (never a number), short-lived, and best effort: while the store is unreachable a
claim cannot be made (the counsellor is bridged as before the claims existed, with no whisper) and a transfer
cannot be recorded (the caller's side, which waits for one, puts the caller through to the general line).

- `ivr:claim:<caller CallSid>`: the desk (a counsellor's own queue) that took the caller, CLAIM_TTL. Set with NX, so
  two counsellors looking at once never take the same caller: each whisper describes the caller who will come over
  to that counsellor's desk, and only that caller does.
- `ivr:bridge:<counsellor CallSid>`: the caller the counsellor was last bridged to, as Twilio names both in the
  request for the `<Queue url>` document (CallSid: the dequeued caller, DequeingCallSid: the counsellor).
- `ivr:transfer:<caller CallSid>`: what the counsellor decided after the bridge: `pending` (they pressed `*` and
  are choosing), `ended` (no transfer), or `to:<option>:<language>`; TRANSFER_TTL.

A claimed caller is moved to the desk at once where Twilio's REST API is configured: each wait round notes on the
caller's call record the queue Twilio holds them in (`queue_sid`, from the waitUrl request's QueueSid) and their lane
(`lane`: partner, option, language, step), and the counsellor's request asks Twilio to dequeue that member to the
desk (`move`, Twilio's queue Member resource). When that fails (no account SID, Twilio's refusal, the caller already
gone, Twilio out of reach) the caller still comes over at their next wait round.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import redis
import requests
import structlog
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient

from ivr.settings import ServiceSettings
from ivr.state import jobs
from ivr.state.keys import key
from ivr.state.store import Store, valid_call_sid

log = structlog.get_logger("ivr.state")
CLAIM_TTL = 60  # seconds a claimed caller is kept for the counsellor's desk (a wait round is about 20 s)
TRANSFER_TTL = 10 * 60  # seconds a counsellor's decision about a caller is kept
LOOK_AHEAD = 20  # callers of a queue looked at for one not already claimed
PENDING, ENDED = "pending", "ended"
QUEUE_SID = re.compile(r"QU[0-9a-fA-F]{32}")
MOVE_TIMEOUT = 4.0  # seconds the counsellor's request waits for Twilio to move the caller (Twilio allows 15 in all)
MOVES = ("moved", "gone", "failed", "off")  # Twilio moved the caller; said they are not in that queue; other; not asked


@dataclass(frozen=True)
class Claimed:
    """A caller a counsellor took: the queue they wait in, their CallSid, their call's record, seconds waited."""

    queue: str
    sid: str
    record: dict[str, str]
    waited: float


@dataclass(frozen=True)
class Decision:
    """A counsellor's decision about the caller after the bridge: pending, ended, or a transfer to an option."""

    state: str  # pending, ended, to
    option: str = ""
    lang: str = ""


def _guarded(store: Store, op: str, default: object, run: object) -> object:
    """Run `run()` on the store's client unless it is degraded; `default` when degraded or on a Redis error, which
    starts the store's back-off as its own commands' errors do (the next requests leave Redis alone a while)."""
    if store.degraded:
        return default
    try:
        result = run()  # type: ignore[operator]
    except redis.RedisError as e:
        log.warning("handover_store_failed", op=op, error=type(e).__name__)
        store.failed(f"handover_{op}", e)
        return default
    return result


def claim(store: Store, queues: list[str], desk: str) -> Claimed | None:
    """The longest-waiting caller of the first queue that has one not yet taken, now taken for `desk`; None when
    there is nobody to take (or the store cannot say)."""
    client: Any = store.client  # redis-py's replies are bytes here

    def run() -> Claimed | None:
        now = time.time()
        for queue in queues:
            pipe = client.pipeline(transaction=False)  # the long-gone pruned and the head read: one round trip
            pipe.zremrangebyscore(key("waiting", queue), "-inf", now - store.ttl)
            pipe.zrange(key("waiting", queue), 0, LOOK_AHEAD - 1, withscores=True)
            for raw, since in pipe.execute()[1]:
                sid = raw.decode()
                if client.set(key("claim", sid), desk, nx=True, ex=CLAIM_TTL):
                    return Claimed(queue, sid, store.call(sid), max(0.0, now - since))
        return None

    return _guarded(store, "claim", None, run)  # type: ignore[return-value]


def waiting_unclaimed(store: Store, queues: list[str]) -> bool:
    """True when some caller waits in these queues who is already taken by a desk but not yet over there."""
    client: Any = store.client  # redis-py's replies are bytes here

    def run() -> bool:
        for queue in queues:
            head = client.zrange(key("waiting", queue), 0, LOOK_AHEAD - 1)
            if head and client.exists(*(key("claim", raw.decode()) for raw in head)):
                return True
        return False

    return bool(_guarded(store, "claimed", False, run))


def desk_of(store: Store, caller_sid: str | None) -> str | None:
    """The desk that took this caller, if one did and it still waits for them."""
    sid = valid_call_sid(caller_sid)
    if sid is None:
        return None
    return desk_from(_guarded(store, "desk", None, lambda: ask_desk(store.client, sid)))


def ask_desk(target: Any, sid: str) -> Any:
    """desk_of's command sent on `target`, a client (its reply, read with desk_from) or a pipeline (queued there)."""
    return target.get(key("claim", sid))


def desk_from(raw: object) -> str | None:
    """The desk in a reply to ask_desk; None for none."""
    return raw.decode() if isinstance(raw, bytes) else None


def arrived(store: Store, caller_sid: str | None) -> None:
    """The caller is on their way to the desk: the claim is done with."""
    sid = valid_call_sid(caller_sid)
    if sid is not None:
        _guarded(store, "arrived", None, lambda: store.client.delete(key("claim", sid)))


def paired(store: Store, counsellor_sid: str | None, caller_sid: str | None) -> None:
    """Note that the counsellor's call is being bridged to this caller's."""
    c, sid = valid_call_sid(counsellor_sid), valid_call_sid(caller_sid)
    if c is not None and sid is not None:
        _guarded(store, "paired", None, lambda: store.client.set(key("bridge", c), sid, ex=store.ttl))


def unpaired(store: Store, counsellor_sid: str | None) -> None:
    """The counsellor moves on to the next caller: the last one is no longer theirs to transfer or flag."""
    c = valid_call_sid(counsellor_sid)
    if c is not None:
        _guarded(store, "paired", None, lambda: store.client.delete(key("bridge", c)))


def bridged_to(store: Store, counsellor_sid: str | None) -> str | None:
    """The caller the counsellor's call was last bridged to; None when unknown."""
    c = valid_call_sid(counsellor_sid)
    if c is None:
        return None
    raw = _guarded(store, "bridged", None, lambda: store.client.get(key("bridge", c)))
    return valid_call_sid(raw.decode()) if isinstance(raw, bytes) else None


def decide(store: Store, caller_sid: str | None, state: str, option: str = "", lang: str = "") -> bool:
    """Record the counsellor's decision about the caller (pending, ended, or `to` an option in a language)."""
    sid = valid_call_sid(caller_sid)
    if sid is None:
        return False
    value = f"to:{option}:{lang}" if state == "to" else state
    return bool(_guarded(store, "transfer", False,
                         lambda: store.client.set(key("transfer", sid), value, ex=TRANSFER_TTL)))


def end(store: Store, caller_sid: str | None) -> None:
    """The counsellor is done with the caller: goodbye for them, unless a transfer was chosen already."""
    d = decision(store, caller_sid)
    if d is None or d.state != "to":
        decide(store, caller_sid, ENDED)


def decision(store: Store, caller_sid: str | None) -> Decision | None:
    """The counsellor's decision about this caller; None when none is recorded (or the store cannot say)."""
    sid = valid_call_sid(caller_sid)
    if sid is None:
        return None
    raw = _guarded(store, "transfer", None, lambda: store.client.get(key("transfer", sid)))
    if not isinstance(raw, bytes):
        return None
    kind, _, rest = raw.decode().partition(":")
    option, _, lang = rest.partition(":")
    return Decision(kind, option, lang)


def taken(store: Store, caller_sid: str | None) -> None:
    """The caller was put through where the counsellor chose: the decision is done with."""
    sid = valid_call_sid(caller_sid)
    if sid is not None:
        _guarded(store, "transfer", None, lambda: store.client.delete(key("transfer", sid)))


def waits_in(store: Store, caller_sid: str | None, queue_sid: str, lane: str) -> None:
    """At a wait round: the queue Twilio holds the caller in and their lane (a query: partner, option, language,
    step), so a counsellor who takes them can have them moved to the desk at once."""
    if QUEUE_SID.fullmatch(queue_sid):
        store.record(caller_sid, queue_sid=queue_sid, lane=lane)


def move(settings: ServiceSettings, queue_sid: str | None, caller_sid: str, url: str) -> str:
    """Ask Twilio to dequeue the caller from that queue to `url` now (MOVES: what came of it). Only Twilio's error
    code and HTTP status are logged; whatever happens, the caller's next wait round still takes them over."""
    if not settings.account_sid or not queue_sid or not QUEUE_SID.fullmatch(queue_sid):
        return "off"
    client = jobs.twilio_client(settings, jobs.HTTP_CLIENT or TwilioHttpClient(timeout=MOVE_TIMEOUT))
    try:
        client.queues(queue_sid).members(caller_sid).update(url=url, method="POST")
    except TwilioRestException as e:  # 400/404: already out of that queue (gone, or over at a wait round)
        log.warning("desk_move_refused", code=e.code, status=e.status)
        return "gone" if e.status in (400, 404) else "failed"
    except (TwilioException, requests.RequestException) as e:
        log.warning("desk_move_failed", error=type(e).__name__)
        return "failed"
    return "moved"
