"""What the call flow asks of the web side, answered for the request being served: action URLs, the number a partner
sees, places at capped partners, the SMS of referral lines, where recordings and the hold sound are fetched. `Flows`
builds the flow of each loaded config with these, once.

SMS is offered only to a caller whose number is a Japanese mobile number, with Twilio's REST API configured; the job
checks again, and keeps to one message a number a day and to the hourly cap. Whether a number had its message today
is not looked up here: the menu would tell a forged caller ID. The number is never passed on or kept: the job gets
the CallSid and asks Twilio for it.
"""

from __future__ import annotations

import datetime as dt

import structlog

from common.facts import E164, JST
from ivr.call.endings import quietest_hours
from ivr.call.flow import Flow
from ivr.call.step import Adapters
from ivr.state.config import ConfigHolder, Loaded
from ivr.state.jobs import send_referral_sms, sms_destination, sms_hour_key
from ivr.state.recordings import HOLD_SECONDS
from ivr.web.helpers import action_url, ext, param, public_base
from ivr.web.hook import hook
from ivr.web.live import handled, live
from routing.model import Campaign, Partner

log = structlog.get_logger("ivr.web")


def take_place(partner: Partner) -> bool:
    """Hold a place for this call at a partner with a cap (shared across instances through Redis)."""
    if hook().sid is None or partner.capacity is None:
        return True
    return bool(ext("store").take_place(partner.id, partner.capacity, hook().call))


def joined(queue: str) -> None:
    """Note that this call now waits in `queue`, so a counsellor hears who is next."""
    ext("store").joined(queue, hook().sid)


def hotline_number() -> str | None:
    """The number a <Dial> shows the partner: the one the caller dialled (Twilio's To), else IVR_CALLER_ID.
    Never the caller's own: without either, Twilio would show it, so that is logged."""
    called = param("To")
    if E164.fullmatch(called):
        return called
    fixed: str | None = ext("settings").caller_id
    if fixed is None:
        log.warning("dial_without_caller_id", detail="set IVR_CALLER_ID to the hotline's number")
    return fixed


def audio_base() -> str:
    """Where Twilio fetches recordings: IVR_AUDIO_URL (a CDN or bucket), else this service's /audio/."""
    return str(ext("settings").audio_url or public_base() + "/audio")


def hold_url() -> str | None:
    """The hold sound Twilio plays between reassurance lines: IVR_HOLD_URL, else our hold.wav where recordings are
    fetched, else None (the audio folder has none)."""
    fixed: str | None = ext("settings").hold_url
    return fixed or ext("config").current.recordings.hold(audio_base)


def hold_seconds() -> int:
    """How long one play of the hold sound lasts: IVR_HOLD_SECONDS for IVR_HOLD_URL, else our own loop's."""
    settings = ext("settings")
    return int(settings.hold_seconds) if settings.hold_url else HOLD_SECONDS


def audio_missing(lang: str, to: str) -> None:
    """Count a recording that was expected but missing, by language and what was said instead."""
    ext("metrics").audio_fallbacks.labels(lang, to).inc()


def sms_possible() -> bool:
    """SMS can be offered: Twilio's REST API and a sender are set, the caller's number is a Japanese mobile number
    (an SMS to any other could be pumped abroad, or aimed at someone else's phone, at our cost), and this hour's
    cap is not reached (a caller is not promised a message the job would not send). Whether the number had its
    message today is not asked here: the answer would tell a forged caller ID whether that number called."""
    settings = ext("settings")
    if not (settings.account_sid and settings.sms_from and hook().sid):
        return False
    if not sms_destination(param("From")):
        return False
    sent = ext("store").number_at(sms_hour_key(hook().instant))
    return sent is None or sent < settings.sms_hourly_cap


def send_sms(body: str) -> bool:
    """Queue one SMS of `body` to this call's caller; False when it could not be queued."""
    queued = bool(ext("store").enqueue(send_referral_sms, {"call_sid": hook().sid, "body": body}))
    ext("metrics").sms.labels("queued" if queued else "failed").inc()
    return queued


def call_record() -> dict[str, str]:
    """This call's record in the store so far; empty when unknown or the store cannot be read."""
    return dict(ext("store").call(hook().sid))


QUIET_KEPT = (3600, 60)  # seconds the quietest hours are kept once read, and once the store could not be read


def quiet_hours() -> tuple[int, int] | None:
    """The JST hours in which the largest share of the last closed campaign's callers got through, read from its
    counts once an hour per process (a minute after the store could not be read); None without enough counts."""
    instant = hook().instant
    past = [c for c in ext("flows").current().routing.campaigns if c.closes <= instant]
    if not past:
        return None
    campaign = past[-1]
    memo: dict[str, tuple[float, tuple[int, int] | None]] = hook().extensions.setdefault("ivr.quiet_hours", {})
    kept = memo.get(campaign.id)
    if kept is not None and kept[0] > instant.timestamp():
        return kept[1]
    read, found = _quietest(campaign)
    memo.clear()
    memo[campaign.id] = (instant.timestamp() + QUIET_KEPT[0 if read else 1], found)
    return found


def _quietest(campaign: Campaign) -> tuple[bool, tuple[int, int] | None]:
    """(whether the store could be read, a campaign's quietest hours from its counts per hour)."""
    first, last = campaign.opens.astimezone(JST).date(), campaign.closes.astimezone(JST).date()
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    counts = ext("store").counts([f"{campaign.id}:{day.isoformat()}" for day in days])
    if counts is None:
        return False, None
    calls: dict[int, int] = {}
    answered: dict[int, int] = {}
    for day in counts:
        for name, n in day.items():
            kind, _, hour = name.rpartition("|h")  # calls|<option>|hHH, answered|hHH
            if hour.isdigit() and (kind == "answered" or kind.startswith("calls|")):
                into = answered if kind == "answered" else calls
                into[int(hour)] = into.get(int(hour), 0) + n
    return True, quietest_hours(calls, answered)


WEB = Adapters(action_url, hotline_number, take_place, sms_possible, send_sms, joined, audio_base, audio_missing,
               hold_url=hold_url, hold_seconds=hold_seconds, quiet_hours=quiet_hours, live=live,
               handled=handled, record=call_record)


class Flows:
    """The call flow of the config loaded at boot, built at start (the fallback URL and the error answers use it and
    must not have to build anything), and of the config serving now, built once per reload."""

    def __init__(self, config: ConfigHolder, adapters: Adapters = WEB):
        self.config = config
        self.adapters = adapters
        self._boot = self._build(config.boot)
        self._current = (config.boot, self._boot)

    def _build(self, loaded: Loaded) -> Flow:
        return Flow(loaded.menu, loaded.routing, self.adapters, loaded.recordings)

    def current(self) -> Flow:
        """The flow that serves calls now (a flow keeps the menus it has rendered while its config serves)."""
        loaded = self.config.current
        if self._current[0] is not loaded:
            self._current = (loaded, self._build(loaded))
        return self._current[1]

    def boot(self) -> Flow:
        """The flow of the config the process started with."""
        return self._boot
