"""Background jobs (RQ): small top-level functions that take plain data."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import re
from typing import Any

from prometheus_client import Counter
from redis import Redis, WatchError
from rq import get_current_job
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from common.facts import JST
from ivr.clock import Clock
from ivr.settings import ServiceSettings, load_settings
from ivr.state import callers, tally
from ivr.state.keys import AGGREGATE_TTL, key

# The only numbers a referral SMS goes to: Japanese mobile numbers (070, 080, 090 and 8 digits). Inbound calls are
# free and caller ID can be forged, so an SMS to any number would let anyone pump premium ranges abroad, or send
# messages to someone else's phone, at our cost; a landline cannot receive one anyway.
JAPANESE_MOBILE = re.compile(r"\+81[789]0\d{8}")
SMS_REASONS = ("sent", "not_mobile", "already_today", "hourly_cap", "failed")  # what became of a referral SMS job


def count_once(marker: str, counts: str, counters: list[str], amounts: dict[str, int] | None = None) -> bool:
    """Add 1 to each counter of the `counts` hash (and each of `amounts` to its counter), unless this marker was
    counted before (a redelivered callback).

    The marker and the counts are written in one transaction: a worker that dies part-way leaves neither, so the
    job run again counts once; two workers folding the same marker at once count it once (WATCH)."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("counting runs as an RQ job")
    folded = key("folded", marker)
    with job.connection.pipeline() as pipe:
        while True:
            try:
                pipe.watch(folded)
                if pipe.exists(folded):
                    return False
                pipe.multi()
                pipe.set(folded, 1, ex=2 * 86400)
                for counter in counters:
                    pipe.hincrby(counts, counter, 1)
                for counter, n in (amounts or {}).items():
                    pipe.hincrby(counts, counter, n)
                pipe.expire(counts, AGGREGATE_TTL)
                pipe.execute()
                return True
            except WatchError:
                continue  # another worker touched the marker meanwhile: look again


def fold_call(record: dict[str, str]) -> bool:
    """Add one finished call to its campaign-day counters, once: a repeated status callback is not counted twice.
    First the days before the call's that still have a HyperLogLog are folded (never raises), so a quiet line's
    ended day is folded by its next finished call even if no web process folds it."""
    job = get_current_job()
    if job is not None:
        callers.fold_quietly(job.connection, record["day"])
    day = key("agg", f"{record.get('campaign') or 'closed'}:{record['day']}")
    option = record.get("option") or "none"
    return count_once(record["call"], day, call_counters(record, option) + tally.counters(record, option),
                      tally.amounts(record, option))


def call_counters(record: dict[str, str], option: str) -> list[str]:
    """The counters one finished call adds to: per option and hour, and how it ended (no caller data)."""
    out = ["calls", f"calls|{option}", f"calls|{option}|h{record.get('hour', '00')}"]
    outcome = record.get("outcome", "")
    if outcome == "closed":
        out.append("closed")
    for kind in ("answered", "abandoned", "referrals"):
        if outcome == kind:
            out.append(f"{kind}|{option}")
    if outcome == "answered":  # per hour, every option: when callers get through (said at the busy ending)
        out.append(f"answered|h{record.get('hour', '00')}")
    if record.get("overflowed") == "1":
        out.append(f"overflowed|{option}")
    if record.get("waited", "").isdigit():
        out.append(f"wait|{option}|{wait_bucket(int(record['waited']))}")
    return out


def twilio_client(settings: ServiceSettings, http_client: Any = None) -> Client:
    """twilio's REST client for TWILIO_ACCOUNT_SID, with TWILIO_API_KEY and TWILIO_API_SECRET when both are set (else
    the auth token), at TWILIO_API_URL when it is set (`http_client`: a test's recording client, else twilio's own)."""
    sid = settings.account_sid or ""
    if settings.api_key and settings.api_secret:
        client = Client(settings.api_key, settings.api_secret, sid, http_client=http_client)
    else:
        client = Client(sid, settings.auth_token, http_client=http_client)
    if settings.api_url:
        client.api.base_url = settings.api_url  # the api domain's documented base; every 2010 resource is under it
    return client


HTTP_CLIENT: Any = None  # tests put a recording client here; production uses twilio's own


@functools.cache
def sms_failures() -> Counter:
    """Counted in the worker (multiprocess mode writes it where the web tier's /metrics reads it); made on first
    use, since in multiprocess mode a metric writes its file as soon as it exists."""
    return Counter("ivr_sms_send_failures_total", "Referral SMS that Twilio did not accept", registry=None)


@functools.cache
def sms_outcomes() -> Counter:
    """What became of each referral SMS job, by reason (SMS_REASONS): counted in the worker and made on first use,
    like sms_failures(); the web tier shows every reason at zero from the start (ivr/metrics.py)."""
    return Counter("ivr_sms_outcomes_total", "Referral SMS jobs by outcome: sent, or why not (not_mobile, "
                   "already_today, hourly_cap, failed)", ["reason"], registry=None)


class SmsRefused(Exception):
    """Twilio refused the referral SMS or the call's details. Only Twilio's error code and HTTP status are kept:
    its message names the number, and RQ keeps the failed job's exception text in Redis for days and logs it."""


def sms_destination(number: str) -> bool:
    """True for a number a referral SMS may go to: a Japanese mobile number (+8170, +8180, +8190 and 8 digits)."""
    return JAPANESE_MOBILE.fullmatch(number) is not None


def send_referral_sms(data: dict[str, str]) -> bool:
    """Send one SMS to the number that made this call (`data`: its CallSid and the body), asked of Twilio now, used
    once and never stored or logged: only to a Japanese mobile number, one a day at most to a number across all
    calls, IVR_SMS_HOURLY_CAP an hour at most in all. Twilio's refusal is raised as SmsRefused, its code alone."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("send_referral_sms runs as an RQ job")
    settings = load_settings()  # in the job's own process (RQ forks one per job): the worker's environment
    if not (settings.account_sid and settings.sms_from):
        return False
    once = key("sms", hashlib.sha256(data["call_sid"].encode()).hexdigest()[:16])
    if not job.connection.set(once, 1, nx=True, ex=86400):
        return False  # one message per call, even if the job is delivered twice
    try:
        reason = _send(job.connection, settings, data)
    except TwilioException as e:
        sms_failures().inc()
        sms_outcomes().labels("failed").inc()
        code = f"error {e.code}, HTTP {e.status}" if isinstance(e, TwilioRestException) else type(e).__name__
        # `from None`: the stored and logged traceback never shows Twilio's message, which names the number
        raise SmsRefused(f"Twilio refused the message ({code})") from None  # RQ keeps the job for a person
    sms_outcomes().labels(reason).inc()
    return reason == "sent"


def _send(redis: Redis, settings: ServiceSettings, data: dict[str, str]) -> str:
    """Ask Twilio for the caller's number and send the SMS if it may go there; the reason (SMS_REASONS)."""
    client = twilio_client(settings, HTTP_CLIENT)
    number = client.calls(data["call_sid"]).fetch()._from or ""  # the library names the field `_from`
    reason = _admit(redis, settings, number, Clock.from_setting(settings.clock).now())
    if reason == "sent":
        client.messages.create(to=number, from_=settings.sms_from, body=data["body"])
    return reason


def sms_hour_key(now: dt.datetime) -> str:
    """The key counting this JST clock hour's referral SMS, against IVR_SMS_HOURLY_CAP."""
    return key("sms-hour", now.astimezone(JST).strftime("%Y-%m-%dT%H"))


def _admit(redis: Redis, settings: ServiceSettings, number: str, now: dt.datetime) -> str:
    """'sent' when an SMS may go to `number` now, and its place is taken: the number's one message of the JST day
    (a key named by an HMAC of day and number under IVR_HASH_KEY, which is never in Redis, so the key says nothing
    to whoever reads the store) and one of the hour's IVR_SMS_HOURLY_CAP; otherwise why not."""
    if not sms_destination(number):
        return "not_mobile"
    local = now.astimezone(JST)
    mark = hmac.new(settings.hash_key, f"{local.date().isoformat()}|{number}".encode(), hashlib.sha256)
    today = key("sms-day", mark.hexdigest()[:32])
    if not redis.set(today, 1, nx=True, ex=86400):  # the day is in the key's name: a day's TTL outlives it
        return "already_today"
    hour = sms_hour_key(now)
    with redis.pipeline() as pipe:
        pipe.incr(hour)
        pipe.expire(hour, 2 * 3600)
        sent = int(pipe.execute()[0])
    if sent > settings.sms_hourly_cap:
        redis.delete(today)  # nothing was sent: the number may have its message in a later hour
        return "hourly_cap"
    return "sent"


def fold_outcome(record: dict[str, str]) -> bool:
    """Count one queue or dial outcome for its campaign day and partner, once per call and step."""
    day = key("agg", f"{record.get('campaign') or 'closed'}:{record['day']}:{record['partner'] or 'none'}")
    counters = [f"{record['kind']}:{record['result'] or 'unknown'}"]
    if record.get("wait_bucket"):
        counters.append(f"wait:{record['wait_bucket']}")
    return count_once(f"{record['call']}:{record['step']}:{record['kind']}", day, counters)


WAIT_BUCKETS = (30, 60, 120, 300, 600, 1200, 1800)


def wait_bucket(seconds: int) -> str:
    """'le60', 'le300', ... 'gt1800': a queue wait as a coarse bucket, for aggregates that identify nobody."""
    return next((f"le{b}" for b in WAIT_BUCKETS if seconds <= b), f"gt{WAIT_BUCKETS[-1]}")
