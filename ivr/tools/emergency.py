"""`ivr emergency list` and `ivr emergency reveal`: the emergency flags counsellors raise, and the one exception to
"no caller's number anywhere".

`reveal CALL --by NAME --approved-by NAME2 --reason TEXT` asks Twilio for the call's `from` at that moment and prints
it once; the service never stores it. Refused unless both names are supervisors listed in the partners file
(`supervisors:`) and differ, within 24 hours of the flag, once per flag, and, for a flag marked "no consent", only
with `--life-threatening`. Every reveal writes an audit line (both names, the reason, the flag, whether it was
life-threatening; never the number) to the log and to `ivr:emergency-audit`, and is counted for the alert that fires
on each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from typing import Any

import structlog
from twilio.base.exceptions import TwilioException, TwilioRestException

from common.configfile import load_model
from common.facts import JST
from ivr.settings import load_settings
from ivr.state import emergency
from ivr.state.keys import AGGREGATE_TTL
from ivr.state.store import connect
from ivr.tools.cli_common import Refused, file_settings, now
from routing.model import PartnersFile

log = structlog.get_logger("ivr.emergency")
AUDIT = "ivr:emergency-audit"  # list: every reveal as JSON, newest first (no number)


def _client(args: argparse.Namespace) -> Any:
    """The service's Redis, reached as the service reaches it (a Sentinel address too), with a person's patience."""
    settings = file_settings(args)
    if not settings.redis_url:
        raise Refused("ivr emergency: REDIS_URL is not set: flags are kept in the Redis the service writes")
    return connect(settings, wait=(2, 5))[0]


def _when(at: dt.datetime) -> str:
    return at.astimezone(JST).strftime("%Y-%m-%d %H:%M JST")


def cmd_list(args: argparse.Namespace) -> int:
    """The flags still kept, oldest first: call, partner, option, when, consent, and whether a reveal is allowed."""
    at = now(args)
    flags = emergency.open_flags(_client(args))
    if not flags:
        print("no open emergency flags")
        return 0
    for f in flags:
        left = emergency.REVEAL_WINDOW - f.age(at)
        window = f"reveal allowed for {int(left // 3600)}h{int(left % 3600 // 60):02d}m" if left > 0 else \
            "older than 24 h: no reveal"
        consent = "consented" if f.consent == "yes" else "NO CONSENT (reveal only if life-threatening)"
        if f.revealed:
            window = "revealed (see the audit)"
        print(f"{f.call}  {_when(f.at)}  partner {f.partner}  option {f.option or '-'}  {consent}  {window}")
    return 0


def supervisors(args: argparse.Namespace) -> list[str]:
    """The supervisors named in the partners file (IVR_PARTNERS_FILE)."""
    path = file_settings(args).partners_file
    if not path:
        raise Refused("ivr emergency reveal: IVR_PARTNERS_FILE is not set: supervisors are listed there")
    return [s.strip() for s in load_model(path, PartnersFile).supervisors if s.strip()]


def check(args: argparse.Namespace, flag: emergency.Flag | None, at: dt.datetime) -> emergency.Flag:
    """The flag, once every rule for a reveal holds; a refusal naming the rule otherwise."""
    by, approved = args.by.strip(), args.approved_by.strip()
    allowed = supervisors(args)
    if by not in allowed or approved not in allowed:
        raise Refused("ivr emergency reveal: refused: --by and --approved-by must both be supervisors listed in the "
                      "partners file (supervisors:)")
    if by == approved:
        raise Refused("ivr emergency reveal: refused: two different supervisors are needed (--by and --approved-by)")
    if not args.reason.strip():
        raise Refused("ivr emergency reveal: refused: give the reason (--reason)")
    if flag is None:
        raise Refused(f"ivr emergency reveal: refused: no emergency flag on {args.call} (see `ivr emergency list`)")
    if flag.age(at) > emergency.REVEAL_WINDOW:
        raise Refused("ivr emergency reveal: refused: the flag is older than 24 hours")
    if flag.consent != "yes" and not args.life_threatening:
        raise Refused("ivr emergency reveal: refused: the caller did not consent; only with --life-threatening")
    return flag


def cmd_reveal(args: argparse.Namespace) -> int:
    """Check the rules, audit, ask Twilio for the caller's number and print it once (never stored or logged)."""
    client = _client(args)
    flag = check(args, emergency.flag(client, args.call), now(args))
    settings = load_settings()
    if not settings.account_sid:
        raise Refused("ivr emergency reveal: TWILIO_ACCOUNT_SID is not set: the number is asked of Twilio's API")
    if not emergency.mark_revealed(client, flag.call):
        raise Refused(f"ivr emergency reveal: refused: the number on {flag.call} was revealed before (see the audit)")
    entry = {"at": time.time(), "call": flag.call, "partner": flag.partner, "option": flag.option,
             "consent": flag.consent, "by": args.by.strip(), "approved_by": args.approved_by.strip(),
             "reason": args.reason.strip(), "life_threatening": bool(args.life_threatening)}
    with client.pipeline(transaction=True) as pipe:
        pipe.lpush(AUDIT, json.dumps(entry, ensure_ascii=False))
        pipe.expire(AUDIT, AGGREGATE_TTL)
        pipe.execute()
    log.warning("emergency_reveal", **{k: v for k, v in entry.items() if k != "at"})
    try:
        from ivr.state.jobs import twilio_client  # the REST client, loaded only for a reveal

        number = twilio_client(settings).calls(flag.call).fetch()._from  # the library names the field `_from`
    except TwilioException as e:
        emergency.unmark_revealed(client, flag.call)  # nothing was shown: the supervisors may try again
        code = f"error {e.code}, HTTP {e.status}" if isinstance(e, TwilioRestException) else type(e).__name__
        log.error("emergency_reveal_failed", call=flag.call, error=code)
        raise Refused(f"ivr emergency reveal: Twilio did not answer with the call ({code}); the attempt is "
                      "audited") from None
    print(f"caller's number for {flag.call}: {number}")
    print("It is shown once and kept nowhere by the service: pass it to the local support organisation now.")
    return 0


def register(sub: Any) -> None:
    """The `ivr emergency` commands."""
    p = sub.add_parser("emergency", help="emergency flags raised by counsellors; the two-supervisor reveal")
    subs = p.add_subparsers(dest="emergency_command", required=True)
    ls = subs.add_parser("list", help="open flags: call, partner, option, when, consent")
    ls.set_defaults(func=cmd_list)
    rv = subs.add_parser("reveal", help="ask Twilio for a flagged caller's number and print it once (audited)")
    rv.add_argument("call", metavar="CALL", help="the flagged call's CallSid, as `ivr emergency list` shows it")
    rv.add_argument("--by", required=True, metavar="NAME", help="you: a supervisor listed in the partners file")
    rv.add_argument("--approved-by", required=True, metavar="NAME2", help="a second supervisor who approved it")
    rv.add_argument("--reason", required=True, help="why, for the audit line")
    rv.add_argument("--life-threatening", action="store_true",
                    help="the caller did not consent but their life is in danger (audited)")
    rv.set_defaults(func=cmd_reveal)
