"""`ivr twilio plan|apply|check`: the Twilio side as code, through twilio's REST client.

What Twilio must hold for calls to reach us, from the config and the settings:
- each entry number (IVR_ENTRY_NUMBERS): voice URL `<IVR_PUBLIC_URL>/voice/incoming`, its fallback URL (the static
  document at IVR_FALLBACK_URL, fetched with GET as a static file allows; else our own `/voice/fallback`) and the
  status callback `/voice/status`, all POST but that fallback;
- the counsellors' number (IVR_COUNSELLOR_NUMBER): voice URL `/counselor/incoming`, POST;
- a queue for every queue partner and its `-urgent` twin, holding at least IVR_QUEUE_MAX_SIZE callers (Twilio's
  default of 100 would turn the 101st waiting caller away).

`plan` prints the differences; `apply` makes them (a number or queue already as wanted gets no request, so running it
twice changes nothing the second time); `check` exits 1 on any difference, for an operator before a campaign opens.
A number that is not in the account is a difference `apply` cannot make: it is reported and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twilio.base.exceptions import TwilioException, TwilioRestException

from ivr.settings import ServiceSettings, load_settings
from ivr.state.config import Loaded, load
from ivr.tools.cli_common import Refused

if TYPE_CHECKING:  # the REST client loads only for a command that talks to Twilio, not for every `ivr` command
    from twilio.rest import Client

NUMBER_FIELDS = ("voice_url", "voice_method", "voice_fallback_url", "voice_fallback_method", "status_callback",
                 "status_callback_method")
MAX_PAGES = 20  # queues are read a page of 1,000 at a time; an account has far fewer


@dataclass(frozen=True)
class Wanted:
    """What Twilio should hold: each number's webhook fields, each queue's least size."""

    numbers: dict[str, dict[str, str]]  # E.164 -> field -> value
    labels: dict[str, str]  # E.164 -> how it is reached (0120, 9999, counsellors)
    queues: dict[str, int]  # queue name -> least max_size


@dataclass(frozen=True)
class Held:
    """What Twilio holds now: each of our numbers found in the account (with its SID), each queue by name."""

    numbers: dict[str, dict[str, Any]]  # E.164 -> {"sid": ..., field: value}
    queues: dict[str, dict[str, Any]]  # friendly name -> {"sid": ..., "max_size": ...}


@dataclass(frozen=True)
class Change:
    """One difference: a number's field, a queue's size, a missing queue (created), or a number not in the account."""

    kind: str  # "number", "queue", "new-queue", "no-number"
    target: str  # the E.164 number or the queue name
    sid: str | None
    field: str = ""
    have: object = None
    want: object = None

    def __str__(self) -> str:
        if self.kind == "no-number":
            return f"number {self.target}: not in this account (buy or port it, then apply again)"
        if self.kind == "new-queue":
            return f"queue {self.target}: missing -> create with max_size {self.want}"
        return f"{self.kind} {self.target}: {self.field}: {self.have!r} -> {self.want!r}"


def wanted(settings: ServiceSettings, loaded: Loaded) -> Wanted:
    """The Twilio side these settings and this config call for; Refused without IVR_PUBLIC_URL."""
    base = settings.public_url
    if not base:
        raise Refused("ivr twilio: IVR_PUBLIC_URL is not set: it is the base of every URL Twilio is given")
    fallback = ({"voice_fallback_url": settings.fallback_url, "voice_fallback_method": "GET"} if settings.fallback_url
                else {"voice_fallback_url": f"{base}/voice/fallback", "voice_fallback_method": "POST"})
    entry = {"voice_url": f"{base}/voice/incoming", "voice_method": "POST", **fallback,
             "status_callback": f"{base}/voice/status", "status_callback_method": "POST"}
    numbers = {number: dict(entry) for number in settings.entries}
    labels = dict(settings.entries)
    if settings.counsellor_number:
        numbers[settings.counsellor_number] = {"voice_url": f"{base}/counselor/incoming", "voice_method": "POST"}
        labels[settings.counsellor_number] = "counsellors"
    routing = loaded.routing
    queues = {name: settings.queue_max_size for pid in routing.partners for name in routing.queues_of(pid)}
    return Wanted(numbers, labels, dict(sorted(queues.items())))


def plan(want: Wanted, held: Held) -> list[Change]:
    """Every difference between what is wanted and what is held; empty when Twilio already matches."""
    out: list[Change] = []
    for number, fields in want.numbers.items():
        have = held.numbers.get(number)
        if have is None:
            out.append(Change("no-number", number, None))
            continue
        out += [Change("number", number, have["sid"], name, have.get(name) or None, value)
                for name, value in fields.items() if (have.get(name) or None) != value]
    for name, size in want.queues.items():
        queue = held.queues.get(name)
        if queue is None:
            out.append(Change("new-queue", name, None, "max_size", None, size))
        elif int(queue.get("max_size") or 0) < size:
            out.append(Change("queue", name, queue["sid"], "max_size", queue.get("max_size"), size))
    return out


def fetch(client: Client, want: Wanted) -> Held:
    """Our numbers as the account lists them (looked up one by one), and every queue of the account."""
    numbers = {}
    for number in want.numbers:
        for found in client.incoming_phone_numbers.list(phone_number=number, limit=20):
            if found.phone_number == number:
                numbers[number] = {"sid": found.sid, **{f: getattr(found, f) for f in NUMBER_FIELDS}}
    queues: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    page = client.queues.page(page_size=1000)
    for _ in range(MAX_PAGES):
        fresh = [q for q in page if q.sid not in seen]
        for q in fresh:
            seen.add(q.sid)
            queues.setdefault(q.friendly_name, {"sid": q.sid, "max_size": q.max_size})
        if not fresh or (page := page.next_page()) is None:  # a page with nothing new: the list has come round
            break
    return Held(numbers, queues)


def make(client: Client, changes: list[Change], want: Wanted) -> list[str]:
    """Make the changes: one update per number that differs (its wanted fields), one per queue; what was done."""
    done = []
    numbers: dict[str, str] = {}
    for c in changes:
        if c.kind == "number" and c.sid:
            numbers[c.target] = c.sid
        elif c.kind == "new-queue":
            client.queues.create(friendly_name=c.target, max_size=int(str(c.want)))
            done.append(f"created queue {c.target} (max_size {c.want})")
        elif c.kind == "queue" and c.sid:
            client.queues(c.sid).update(max_size=int(str(c.want)))
            done.append(f"queue {c.target}: max_size {c.want}")
    for number, sid in numbers.items():
        client.incoming_phone_numbers(sid).update(**want.numbers[number])
        done.append(f"number {number} ({want.labels.get(number, '')}): {', '.join(sorted(want.numbers[number]))}")
    return done


def _prepare(args: argparse.Namespace) -> tuple[Client, Wanted]:
    """The REST client and what is wanted, from the settings and the config files."""
    settings = load_settings()
    if not settings.account_sid:
        raise Refused("ivr twilio: TWILIO_ACCOUNT_SID is not set")
    loaded = load(settings.menu_file, settings.routing_file, settings.partners_file, audio_dir=settings.audio_dir)
    from ivr.state.jobs import twilio_client

    return twilio_client(settings), wanted(settings, loaded)


def cmd_twilio(args: argparse.Namespace) -> int:
    """plan: print the differences; apply: make them; check: exit 1 on any difference."""
    client, want = _prepare(args)
    try:
        changes = plan(want, fetch(client, want))
        for c in changes:
            print(c)
        if args.twilio_command == "apply":
            for line in make(client, changes, want):
                print(f"done: {line}")
            unmade = [c for c in changes if c.kind == "no-number"]
            return 1 if unmade else 0
    except TwilioRestException as e:
        print(f"ivr twilio: Twilio refused a request (error {e.code}, HTTP {e.status}): {e.uri}", file=sys.stderr)
        return 2
    except TwilioException as e:
        print(f"ivr twilio: {e}", file=sys.stderr)
        return 2
    if not changes:
        print(f"ok: {len(want.numbers)} numbers and {len(want.queues)} queues as wanted")
        return 0
    print(f"{len(changes)} differences", file=sys.stderr)
    return 1 if args.twilio_command == "check" else 0


def register(sub: Any) -> None:
    """Add `ivr twilio plan|apply|check` to the `ivr` command's subparsers."""
    tw = sub.add_parser("twilio", help="the Twilio side as code: numbers' webhooks and queues' sizes")
    ts = tw.add_subparsers(dest="twilio_command", required=True)
    for name, text in (("plan", "print what differs from what the config and settings call for"),
                       ("apply", "make the differences (idempotent)"),
                       ("check", "exit 1 when anything differs (before a campaign opens)")):
        ts.add_parser(name, help=text).set_defaults(func=cmd_twilio)
