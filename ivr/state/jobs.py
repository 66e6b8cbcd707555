"""Background jobs (RQ): small top-level functions that take plain data."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

from prometheus_client import Counter
from redis import WatchError
from rq import get_current_job
from twilio.base.exceptions import TwilioException
from twilio.rest import Client

from ivr.privacy import withheld
from ivr.settings import load_settings
from ivr.state.keys import AGGREGATE_TTL, key


def count_once(marker: str, counts: str, counters: list[str]) -> bool:
    """Add 1 to each counter of the `counts` hash, unless this marker was counted before (a redelivered callback).

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
                pipe.expire(counts, AGGREGATE_TTL)
                pipe.execute()
                return True
            except WatchError:
                continue  # another worker touched the marker meanwhile: look again


def fold_call(record: dict[str, str]) -> bool:
    """Add one finished call to its campaign-day counters, once: a repeated status callback is not counted twice."""
    day = key("agg", f"{record.get('campaign') or 'closed'}:{record['day']}")
    return count_once(record["call"], day, call_counters(record, record.get("option") or "none"))


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


def twilio_client(account_sid: str, auth_token: str, http_client: Any = None) -> Client:
    """twilio's REST client (`http_client`: a test's recording client, else twilio's own)."""
    return Client(account_sid, auth_token, http_client=http_client)


HTTP_CLIENT: Any = None  # tests put a recording client here; production uses twilio's own


@functools.cache
def sms_failures() -> Counter:
    """Counted in the worker (multiprocess mode writes it where the web tier's /metrics reads it); made on first
    use, since in multiprocess mode a metric writes its file as soon as it exists."""
    return Counter("ivr_sms_send_failures_total", "Referral SMS that Twilio did not accept", registry=None)


def send_referral_sms(data: dict[str, str]) -> bool:
    """Send one SMS to the number that made this call, asked of Twilio now, used once and never stored or logged."""
    job = get_current_job()
    if job is None:
        raise RuntimeError("send_referral_sms runs as an RQ job")
    settings = load_settings()  # in the job's own process (RQ forks one per job): the worker's environment
    if not (settings.account_sid and settings.sms_from):
        return False
    once = key("sms", hashlib.sha256(data["call_sid"].encode()).hexdigest()[:16])
    if not job.connection.set(once, 1, nx=True, ex=86400):
        return False  # one message per call, even if the job is delivered twice
    client = twilio_client(settings.account_sid, settings.auth_token, HTTP_CLIENT)
    number = client.calls(data["call_sid"]).fetch()._from  # the library names the field `_from`
    if not number or withheld(number):
        return False
    try:
        client.messages.create(to=number, from_=settings.sms_from, body=data["body"])
    except TwilioException:
        sms_failures().inc()
        raise  # RQ keeps the failed job (without the number) for a person to look at
    return True


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
