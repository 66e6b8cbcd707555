"""What a step of the call flow is made of: the answer it gives (with what the log line and metrics say about it),
what the caller said, and what the flow asks of the web side."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from twilio.twiml.voice_response import VoiceResponse

from routing.model import Partner
from routing.share import NO_LIVE, Live

UrlFor = Callable[..., str]


@dataclass(frozen=True)
class Adapters:
    """What the flow needs from the web side: URLs, the hotline's number, partner places, the SMS offer, where
    recordings and the hold sound are fetched."""

    url: UrlFor
    line_number: Callable[[], str | None] = lambda: None  # shown to partners instead of the caller's number
    take_place: Callable[[Partner], bool] = lambda p: True  # False when the partner is at its cap
    sms_possible: Callable[[], bool] = lambda: False  # the caller's number is present, not withheld, and SMS is set up
    send_sms: Callable[[str], bool] = lambda body: False  # queue one message to the caller
    joined: Callable[[str], None] = lambda queue: None  # the caller now waits in this queue
    audio_base: Callable[[], str] = lambda: "/audio"  # where Twilio fetches recordings
    audio_missing: Callable[[str, str], None] = lambda lang, to: None  # a recording was expected: (language, to)
    # the hold sound Twilio plays between reassurance lines; None: none available
    hold_url: Callable[[], str | None] = lambda: None
    hold_seconds: Callable[[], int] = lambda: 8  # how long one play of the hold sound lasts
    quiet_hours: Callable[[], tuple[int, int] | None] = lambda: None  # JST hours the last campaign was least busy
    # what operators and the store say now: paused partners, closed options, callers waiting, the weighted draw
    live: Callable[[], Live] = lambda: NO_LIVE
    handled: Callable[[str], int | None] = lambda partner: None  # callers a partner took lately; None: unknown
    record: Callable[[], Mapping[str, str]] = lambda: {}  # this call's record so far; empty when the store cannot say


@dataclass(frozen=True)
class Heard:
    """A spoken answer (Twilio's SpeechResult and Confidence); never logged or stored, only matched."""

    text: str
    confidence: float


@dataclass
class Step:
    """A webhook's answer plus what the canonical log line and the metrics say about it."""

    twiml: VoiceResponse | str  # a document, or the text of one rendered before (a cached first menu)
    decision: str
    option: str | None = None
    lang: str | None = None
    outcome: str | None = None  # ivr_routes_total outcome
    bad_input: str | None = None  # wrong / empty
    crisis: bool = False  # the caller said words of suicidal crisis and is put through on the urgent lane
    record: dict[str, str | int] | None = None

    @property
    def xml(self) -> str:
        """The TwiML document as text, with its XML declaration."""
        return self.twiml if isinstance(self.twiml, str) else str(self.twiml)
