"""`ivr fallback export`: a static TwiML document for when this service cannot be reached at all.

Twilio requests a number's fallback URL when the voice URL fails; if that URL is on the same host, the same outage
fails it too. This document is hosted elsewhere (a Twilio TwiML Bin, or a static file on another provider) and set as
the fallback URL by `ivr twilio apply` when IVR_FALLBACK_URL is given. It needs nothing from us: in Japanese, then in
English, the greeting (where the language has its own), the 110/119 notice, that nobody can take the call now, the
referral lines open around the clock (every day, 00:00-24:00, no annual closure: a static document cannot know the
hour), please call again, goodbye; then <Hangup/>. No URL back to this service, no recording (each language's voice),
under Twilio's 64 kB.

Each export records the document's hash in the service's state directory (IVR_STATE_DIR, private to its user; one
record per routing file), never beside the config, which is often a read-only mount; `ivr config check` warns when
the config would now export a different document (a referral line or a prompt changed), so the hosted copy is
replaced before a campaign opens.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import Any

from twilio.twiml.voice_response import VoiceResponse

from ivr.call.speaking import Speaker, referral_name
from ivr.state.config import Loaded
from ivr.state.private import private_dir
from ivr.state.recordings import Recordings
from ivr.tools.cli_common import Refused, file_options, file_settings, files, load_config
from ivr.tools.standin import MAX_TWIML_BYTES, StandIn
from ivr.tools.transports import StaticDocument
from menus import HOME, Phone
from routing.model import Referral

LANGUAGES = (HOME, "en")
RECORD = "fallback-{routing}.sha256"  # in the state directory: the last exported document's hash, per routing file


def around_the_clock(referral: Referral) -> bool:
    """A phone line open every day, all day, with no annual closure: true whatever the hour of the outage."""
    return (referral.number is not None and not referral.online and not referral.closed
            and any(rule.days == "daily" and rule.monthdays is None and rule.start == "00:00" and rule.end == "24:00"
                    for rule in referral.hours))


def lines_for_fallback(loaded: Loaded) -> list[Referral]:
    """The referral lines the document names, in config order, one per number."""
    seen: set[str] = set()
    out = []
    for referral in loaded.routing.spec.referrals:
        if around_the_clock(referral) and referral.number not in seen:
            seen.add(str(referral.number))
            out.append(referral)
    return out


def document(loaded: Loaded) -> str:
    """The static fallback document, as TwiML text."""
    menu = loaded.menu
    speaker = Speaker(menu, Recordings(None, ()), audio_base=lambda: "", audio_missing=lambda lang, to: None)
    general = menu.general
    lines = lines_for_fallback(loaded)
    r = VoiceResponse()
    for lang in LANGUAGES:
        said = [menu.line(lang, "greeting")] if menu.template(lang, "greeting", None)[0] == lang else []
        said += [menu.line(lang, "emergency" if said else "emergency_short"), menu.line(lang, "all_busy")]
        if lines:
            said += [menu.line(lang, "now_open_lines", general),
                     *(menu.line(lang, "referral", general, name=referral_name(x), number=Phone(str(x.number)))
                       for x in lines)]
        said += [menu.line(lang, "try_later"), menu.line(lang, "goodbye")]
        speaker.speak(r, said)
    r.hangup()
    return str(r)


def digest(text: str) -> str:
    """The document's sha256, as recorded at export."""
    return hashlib.sha256(text.encode()).hexdigest()


def record_file(state_dir: Path, routing_file: Path) -> Path:
    """Where the hash of the last document exported from this routing file is kept: in the state directory, named
    by the routing file's absolute path (a copy elsewhere, or another config, has its own record)."""
    where = hashlib.sha256(str(routing_file.absolute()).encode()).hexdigest()[:16]
    return state_dir / RECORD.format(routing=where)


def drift(loaded: Loaded, routing_file: Path, state_dir: Path) -> list[str]:
    """`ivr config check`'s warning when the document the config exports now differs from the last one exported
    (nothing when none was exported from this routing file, or its record cannot be read)."""
    record = record_file(state_dir, routing_file)
    try:
        last = record.read_text(encoding="utf-8").strip() if record.is_file() else None
    except OSError:
        return []
    if last is None or last == digest(document(loaded)):
        return []
    return [f"{routing_file}: the fallback document would differ from the one last exported (recorded in {record}; "
            "the referral lines or the prompts changed): run `ivr fallback export --out FILE` and replace the "
            "hosted copy"]


def cmd_export(args: argparse.Namespace) -> int:
    """Write the fallback document to --out (or stdout) and record its hash in the state directory. The directory is
    made (private) first, so an export that could not be recorded writes nothing; any error is one line."""
    loaded = load_config(args)
    text = document(loaded)
    size = len(text.encode())
    if size > MAX_TWIML_BYTES:
        raise Refused(f"ivr fallback export: the document is {size} bytes, over Twilio's {MAX_TWIML_BYTES}: "
                      "fewer referral lines or shorter prompts")
    state_dir = file_settings(args).state_dir
    record = record_file(state_dir, files(args)[1])
    try:
        private_dir(state_dir, "IVR_STATE_DIR")
    except OSError as e:
        raise Refused(f"ivr fallback export: cannot record the export in {state_dir} (IVR_STATE_DIR): "
                      f"{e.strerror or e}") from None
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise Refused(f"ivr fallback export: cannot write {args.out}: {e.strerror or e}") from None
        print(f"wrote {args.out} ({size} bytes, {len(lines_for_fallback(loaded))} referral lines)", file=sys.stderr)
    else:
        sys.stdout.write(text + "\n")
    try:
        record.write_text(digest(text) + "\n", encoding="utf-8")
    except OSError as e:
        raise Refused(f"ivr fallback export: the document was exported, but its record {record} cannot be written "
                      f"({e.strerror or e}): `ivr config check` cannot tell when it is out of date") from None
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    """Follow a document (FILE, else the one the config exports now) with the Twilio stand-in and print what the
    caller hears; exit 1 if they would be stranded."""
    body = Path(args.file).read_bytes() if args.file else document(load_config(args)).encode()
    result = StandIn(StaticDocument(body), "static", "https://fallback.invalid", printer=print).call()
    return 1 if result.stranded else 0


def register(sub: Any) -> None:
    """Add `ivr fallback export` to the `ivr` command's subparsers."""
    fb = sub.add_parser("fallback", help="the static fallback document, for when this service cannot be reached")
    fs = fb.add_subparsers(dest="fallback_command", required=True)
    ex = fs.add_parser("export", help="a static TwiML document: greeting, 110/119, lines open around the clock")
    ex.add_argument("--out", help="write it to this file (default: standard output)")
    file_options(ex)
    ex.set_defaults(func=cmd_export)
    ls = fs.add_parser("listen", help="what a caller hears from a fallback document (the stand-in follows it)")
    ls.add_argument("file", nargs="?", help="an exported document (default: the one the config exports now)")
    file_options(ls)
    ls.set_defaults(func=cmd_listen)
