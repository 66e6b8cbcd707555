"""A stand-in for Twilio's voice platform: places a simulated call on the app and follows its TwiML.

It signs every request as Twilio does (RequestValidator), checks each answer as Twilio would (status, content type,
XML declaration, root <Response>, 64 kB), requests the fallback URL when an answer is unusable, and follows
Say, Play, Pause, Gather, Redirect, Enqueue (with its waitUrl and action), Dial (with its action), Leave, Hangup.
"""

from __future__ import annotations

import secrets
import urllib.parse
import xml.etree.ElementTree as ET  # types and ParseError; parsing goes through defusedxml
from collections.abc import Callable
from dataclasses import dataclass, field

from defusedxml.ElementTree import fromstring
from twilio.request_validator import RequestValidator

from common.facts import DIAL_ANSWERED
from ivr.state.recordings import HOLD_FILE, HOLD_SECONDS
from ivr.tools.transports import InProcess, OverHttp, Transport

MAX_TWIML_BYTES = 64 * 1024  # Twilio refuses a longer TwiML document
CONNECTED_QUEUE = frozenset({"bridged"})  # the one QueueResult the stand-in gives a caller a counsellor took


@dataclass
class Event:
    """One thing that happened on a simulated call (a line said, a key pressed, a transfer), as a tester reads it."""

    kind: str  # say play hold pause key speech silence enqueue wait leave connected dial hangup end error ...
    text: str = ""
    lang: str = ""
    voice: str = ""
    target: str = ""
    result: str = ""

    def __str__(self) -> str:
        shown = {"say": f"[say {self.lang}] {self.text}", "other": f"[the other party hears, {self.lang}] {self.text}",
                 "key": f"[key] caller presses {self.text}", "play": f"[play {self.lang}] {self.target}",
                 "speech": f"[speech] caller says \"{self.text}\" (confidence {self.result})",
                 "silence": "[silence] caller presses nothing", "hold": f"[hold sound] {self.text}",
                 "connected": f"[connected] {self.target} ({self.result})"}
        if self.kind in shown:
            return "  " + shown[self.kind]
        if self.kind in ("enqueue", "dial"):
            return f"  [{self.kind}] {self.target}" + (f" -> {self.result}" if self.result else "")
        return f"  [{self.kind}] {self.text or self.target}".rstrip()


@dataclass
class CallResult:
    """Everything that happened on one simulated call, for a tester to check: what was heard, asked and how it ended."""

    call_sid: str
    events: list[Event] = field(default_factory=list)
    requests: list[tuple[str, int]] = field(default_factory=list)
    fallback_used: bool = False
    app_error: bool = False
    ended_silently: bool = False  # the TwiML that ended the call said nothing

    def heard(self, lang: str | None = None) -> list[str]:
        """The lines the caller heard spoken, in `lang` (a language code or its start) or any."""
        return [e.text for e in self.events if e.kind == "say" and (lang is None or e.lang.startswith(lang))]

    def played(self, lang: str | None = None) -> list[str]:
        """The clips played (their file names), from recordings in `lang` (a menu language code) or any."""
        return [e.target.rsplit("/", 1)[-1].split("?")[0] for e in self.events
                if e.kind == "play" and (lang is None or e.lang == lang)]

    @property
    def text(self) -> str:
        """Every line the caller heard spoken, one per line."""
        return "\n".join(self.heard())

    @property
    def connected(self) -> Event | None:
        """The last connection to a person (a bridged queue or an answered dial), if any."""
        hits = [e for e in self.events if e.kind == "connected"]
        return hits[-1] if hits else None

    def of(self, kind: str) -> list[Event]:
        """The events of one kind (say, key, dial...), in the order they happened."""
        return [e for e in self.events if e.kind == kind]

    @property
    def stranded(self) -> bool:
        """Ended with no person and nothing said at the end, or with Twilio's own application error."""
        return self.app_error or (self.connected is None and self.ended_silently)


class StandIn:
    """Twilio's side of a call, for a tester or operator: rings the app with scripted keys and outcomes."""

    def __init__(self, transport: Transport, auth_token: str, base_url: str, *,
                 keys: list[str] | None = None, key_source: Callable[[], str | None] | None = None,
                 dial_status: str = "completed", queue_result: str = "bridged", wait_rounds: int | list[int] = 1,
                 queue_position: int = 1, avg_queue_time: int = 60,
                 caller: str = "+819000000000", called: str = "+81120494949",
                 printer: Callable[[Event], None] | None = None, extra: dict[str, str] | None = None,
                 max_requests: int = 60, dequeued: str | None = None):
        self.transport = transport
        self.validator = RequestValidator(auth_token)
        self.base = base_url.rstrip("/")
        self.keys = list(keys or [])
        self.key_source = key_source
        self.dial_status = dial_status
        self.queue_result = queue_result
        self.wait_rounds = [wait_rounds] if isinstance(wait_rounds, int) else list(wait_rounds) or [1]
        self.queue_position = queue_position
        self.avg_queue_time = avg_queue_time
        self.caller = caller
        self.called = called
        self.printer = printer
        self.extra = extra or {}
        self.max_requests = max_requests
        self.dequeued = dequeued  # the waiting caller a <Dial><Queue> takes (CallSid); None: one made up

    # -- plumbing ---------------------------------------------------------------------------------------------
    def _emit(self, result: CallResult, event: Event) -> None:
        result.events.append(event)
        if self.printer:
            self.printer(event)

    def _params(self, result: CallResult, extra: dict[str, str]) -> dict[str, str]:
        return {"CallSid": result.call_sid, "AccountSid": "AC" + "0" * 32, "From": self.caller, "To": self.called,
                "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01", **self.extra,
                **extra}

    def request(self, result: CallResult, url: str, extra: dict[str, str]) -> tuple[int, str, bytes]:
        """Send one webhook request for this call, signed and filled in as Twilio would, and note it on the call
        (`extra` may name another call: the dequeued caller of a <Queue url> request)."""
        params = self._params(result, extra)
        status, ctype, body = self.transport.post(url, params, self.validator.compute_signature(url, params))
        result.requests.append((urllib.parse.urlsplit(url).path, status))
        return status, ctype, body

    def fetch(self, result: CallResult, url: str, extra: dict[str, str]) -> ET.Element | None:
        """A TwiML document, as Twilio would accept it; on a bad answer, the fallback URL's document instead."""
        status, ctype, body = self.request(result, url, extra)
        problem = twiml_problem(status, ctype, body)
        if problem is None:
            return fromstring(body)
        self._emit(result, Event("error", text=f"{urllib.parse.urlsplit(url).path}: {problem}"))
        if result.fallback_used:
            self._app_error(result)
            return None
        result.fallback_used = True
        fb = f"{self.base}/voice/fallback"
        self._emit(result, Event("fallback", target=fb))
        code = "11200" if status >= 400 or status == 599 else "12100"
        status, ctype, body = self.request(result, fb, {"ErrorCode": code, "ErrorUrl": url})
        problem = twiml_problem(status, ctype, body)
        if problem is None:
            return fromstring(body)
        self._emit(result, Event("error", text=f"fallback: {problem}"))
        self._app_error(result)
        return None

    def _app_error(self, result: CallResult) -> None:
        result.app_error = True
        self._emit(result, Event("say", text="We are sorry, an application error has occurred. Goodbye.",
                                 lang="en-US", voice="twilio"))
        self._emit(result, Event("hangup"))

    def answer(self, result: CallResult, gather: ET.Element) -> dict[str, str] | None:
        """The caller's answer to a <Gather>: {"Digits": k}, {"SpeechResult": ..., "Confidence": ...} for a key
        written `say:<words>[@confidence]`, or None for silence (speech where only keys are taken is silence)."""
        key = self.next_key(result)
        if key is None:
            return None
        if key.startswith("say:"):
            words, _, confidence = key[4:].rpartition("@") if "@" in key else (key[4:], "", "0.92")
            if "speech" not in (gather.get("input") or "dtmf"):
                self._emit(result, Event("error", text="speech where the <Gather> takes only keys: heard as silence"))
                return None
            self._emit(result, Event("speech", text=words, result=confidence, lang=gather.get("language", "")))
            return {"SpeechResult": words, "Confidence": confidence}
        if key == gather.get("finishOnKey", "#"):
            return None
        self._emit(result, Event("key", text=key))
        return {"Digits": key}

    def next_key(self, result: CallResult) -> str | None:
        """The caller's next key (or `say:` words), from the script or asked at the keyboard; None for silence."""
        key: str | None
        if self.keys:
            key = self.keys.pop(0)
        elif self.key_source is not None:
            key = self.key_source()
        else:
            key = None
        if key in (None, "", "-", "_", "silence"):
            self._emit(result, Event("silence"))
            return None
        return key

    # -- the call ---------------------------------------------------------------------------------------------
    def call(self, path: str = "/voice/incoming", first: dict[str, str] | None = None,
             call_sid: str | None = None) -> CallResult:
        """Place one simulated call on the app, as Twilio would, and return what the caller heard. `first`: the
        parameters of the first request (e.g. a queue's outcome, to follow a call from its queue action on);
        `call_sid`: the CallSid, to go on with a call placed before."""
        result = CallResult(call_sid=call_sid or "CA" + secrets.token_hex(16))
        step: tuple[str, dict[str, str]] | None = (f"{self.base}{path}", dict(first or {}))
        while step is not None:
            if len(result.requests) >= self.max_requests:
                self._emit(result, Event("error", text=f"stopped after {self.max_requests} requests"))
                result.app_error = True
                break
            url, extra = step
            doc = self.fetch(result, url, extra)
            if doc is None:
                break
            step = self.run(result, doc, url)
        status, _, _ = self.request(result, f"{self.base}/voice/status", {"CallStatus": "completed"})
        if status not in (200, 204):
            self._emit(result, Event("error", text=f"status callback answered {status}"))
        return result

    def run(self, result: CallResult, doc: ET.Element, url: str) -> tuple[str, dict[str, str]] | None:
        """Play one document; return the next request, or None when the call ends."""
        said = False
        for verb in doc:
            tag = verb.tag
            if tag in ("Say", "Play", "Pause"):
                said |= self.play(result, verb)
            elif tag == "Gather":
                for child in verb:
                    said |= self.play(result, child)
                action = urllib.parse.urljoin(url, verb.get("action") or url)
                answer = self.answer(result, verb)
                if answer is not None:
                    return action, answer
                if verb.get("actionOnEmptyResult") == "true":
                    return action, {}
            elif tag == "Redirect":
                self._emit(result, Event("redirect", target=(verb.text or "").strip()))
                return urllib.parse.urljoin(url, (verb.text or "").strip()), {}
            elif tag == "Enqueue":
                nxt = self.enqueue(result, verb, url)
                if nxt is not None:
                    return nxt
            elif tag == "Dial":
                nxt = self.dial(result, verb, url)
                if nxt is not None:
                    return nxt
            elif tag in ("Hangup", "Reject"):
                result.ended_silently = not said
                self._emit(result, Event("hangup"))
                return None
            elif tag == "Leave":
                continue
            else:
                self._emit(result, Event("error", text=f"unsupported verb <{tag}>"))
        result.ended_silently = not said
        self._emit(result, Event("end", text="end of TwiML: the call is hung up"))
        return None

    def play(self, result: CallResult, verb: ET.Element) -> bool:
        """Play one <Say>, <Play> or <Pause> to the caller; True when something was said or played."""
        if verb.tag == "Say":
            self._emit(result, Event("say", text="".join(verb.itertext()).strip(), lang=verb.get("language", ""),
                                     voice=verb.get("voice", "")))
            return True
        if verb.tag == "Play":
            target = (verb.text or "").strip()
            held = hold_seconds(verb)
            if held is not None:  # the hold sound: no language
                self._emit(result, Event("hold", text=f"{held} s"))
                return True
            folder = urllib.parse.urlsplit(target).path.rsplit("/", 2)  # .../audio/<language>/<clip>
            self._emit(result, Event("play", target=target, lang=folder[-2] if len(folder) == 3 else ""))
            return True
        if verb.tag == "Pause":
            self._emit(result, Event("pause", text=f"{verb.get('length', '1')} s"))
        return False

    def enqueue(self, result: CallResult, verb: ET.Element, url: str) -> tuple[str, dict[str, str]] | None:
        """Hold the caller in a queue with its wait music, then leave or connect; return the action request, if any."""
        queue = (verb.text or "").strip()
        self._emit(result, Event("enqueue", target=queue))
        outcome = self.queue_result
        wait_url = verb.get("waitUrl")
        rounds = self.wait_rounds.pop(0) if len(self.wait_rounds) > 1 else self.wait_rounds[0]
        waited = 0  # seconds in the queue: what the wait documents played (a spoken line counts as 3 s)
        for n in range(rounds if wait_url else 0):
            doc = self.fetch(result, urllib.parse.urljoin(url, wait_url or ""), {
                "QueuePosition": str(self.queue_position), "QueueSid": "QU" + "0" * 32, "QueueTime": str(waited),
                "AvgQueueTime": str(self.avg_queue_time), "CurrentQueueSize": str(self.queue_position),
                "MaxQueueSize": "100"})
            if doc is None:
                return None
            self._emit(result, Event("wait", text=f"round {n + 1} in {queue}"))
            left = False
            for child in doc:
                if child.tag == "Leave":
                    self._emit(result, Event("leave", target=queue))
                    outcome, left = "leave", True
                    break
                if child.tag == "Hangup":
                    outcome, left = "hangup", True
                    break
                for part in (child if child.tag == "Gather" else [child]):  # an offer in the wait: heard, no key
                    self.play(result, part)
                held = hold_seconds(child)
                waited += int(child.get("length", "1")) if child.tag == "Pause" else 3 if held is None else held
            if left:
                break
        if outcome in CONNECTED_QUEUE:
            self._emit(result, Event("connected", target=f"queue {queue}", result=outcome))
        action = verb.get("action")
        if action:
            return urllib.parse.urljoin(url, action), {"QueueResult": outcome, "QueueSid": "QU" + "0" * 32,
                                                        "QueueTime": str(waited)}
        return None

    def dial(self, result: CallResult, verb: ET.Element, url: str) -> tuple[str, dict[str, str]] | None:
        """Put the caller through to a number or a waiting caller, as scripted; return the action request, if any."""
        targets = [(c.text or "").strip() for c in verb] or [(verb.text or "").strip()]
        target = ", ".join(targets)
        queues = [c for c in verb if c.tag == "Queue"]
        self._emit(result, Event("dial", target=target, result=self.dial_status))
        if self.dial_status in DIAL_ANSWERED:
            for q in queues:  # the dequeued caller hears the Queue url's document before the bridge: Twilio
                # runs it on that caller's leg, CallSid naming them and DequeingCallSid this call
                if q.get("url"):
                    doc = self.fetch(result, urllib.parse.urljoin(url, q.get("url", "")), {
                        "CallSid": self.dequeued or "CA" + secrets.token_hex(16), "QueueSid": "QU" + "0" * 32,
                        "QueueTime": "120", "DequeingCallSid": result.call_sid})
                    for child in doc if doc is not None else []:
                        if child.tag == "Say":
                            self._emit(result, Event("other", text="".join(child.itertext()).strip(),
                                                     lang=child.get("language", "")))
            kind = "queue" if queues else "phone"
            self._emit(result, Event("connected", target=f"{kind} {target}", result=self.dial_status))
        action = verb.get("action")
        if action:
            return urllib.parse.urljoin(url, action), {"DialCallStatus": self.dial_status,
                                                        "DialCallSid": "CA" + secrets.token_hex(16),
                                                        "DialCallDuration": "300"}
        return None


def hold_seconds(verb: ET.Element) -> int | None:
    """How long a <Play> of the hold sound lasts (its loops of HOLD_SECONDS); None for any other verb."""
    url = urllib.parse.urlsplit((verb.text or "").strip()).path
    if verb.tag != "Play" or not url.endswith("/" + HOLD_FILE):
        return None
    return HOLD_SECONDS * int(verb.get("loop") or 1)


def twiml_problem(status: int, content_type: str, body: bytes) -> str | None:
    """Why Twilio would refuse this answer, or None when it is valid TwiML."""
    if status != 200:
        return f"HTTP {status}"
    if content_type.split(";")[0].strip() not in ("text/xml", "application/xml"):
        return f"content type '{content_type}' is not XML"
    if len(body) > MAX_TWIML_BYTES:
        return f"{len(body)} bytes is over Twilio's 64 kB limit"
    if body[:1].isspace():
        return "whitespace before the XML declaration"
    try:
        root = fromstring(body)
    except ET.ParseError as e:
        return f"not well-formed XML ({e})"
    if root.tag != "Response":
        return f"root element is <{root.tag}>, not <Response>"
    return None


__all__ = ["CallResult", "Event", "InProcess", "OverHttp", "StandIn", "Transport", "hold_seconds", "twiml_problem"]
