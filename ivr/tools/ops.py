"""`ivr ops`: live controls during a campaign, kept in Redis (REDIS_URL) so every instance obeys within a second.

Every change needs `--by NAME` and goes to the audit log with `--why`. The same controls are at `/admin/ops/*` on
any instance, behind IVR_ADMIN_TOKEN.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import redis

from ivr.state.controls import Controls
from ivr.state.operate import OpsRefused, apply, iso, status
from ivr.state.store import connect
from ivr.tools.cli_common import Refused, file_options, file_settings, load_config

PLAYBOOK = """\
what to do when:
  a partner's phones are down
      ivr ops pause PARTNER --for 30m --by NAME --why "phones down"
      Its waiting callers move on at their next wait round (to the next partner in the chain, never dropped);
      new callers skip it. `ivr ops status` shows where callers wait now. `ivr ops resume PARTNER --by NAME`
      when its counsellors answer again (or let --for run out).
  a surge (a press release, the news)
      ivr ops announce congestion --for 2h --by NAME
      Callers hear, after the greeting, that lines are busy and when to try again. Watch `ivr ops status`:
      a partner whose longest wait passes its max_wait needs counsellors; pause it if it has none, so its
      callers go on to the next partner instead of waiting.
  a disaster (an earthquake, a typhoon)
      ivr ops announce disaster --until 2026-01-03T09:00:00+09:00 --by NAME
      Close options whose partners are affected (`ivr ops close OPTION --by NAME`: their callers go to the
      general line); after editing routing.yaml (a disaster shift, more partners), `ivr ops reload --by NAME`
      reloads every instance and prints which config hash each applied, or why it refused.
See ops/runbook.md for the alerts and what each one means."""


def _controls(args: argparse.Namespace) -> Controls:
    settings = file_settings(args)
    if not settings.redis_url:
        raise Refused("ivr ops: REDIS_URL is not set: the live controls are kept in the Redis every instance shares")
    client, _ = connect(settings)  # the service's own way there (a Sentinel address too)
    return Controls(client)


def _say(args: argparse.Namespace, done: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(done, ensure_ascii=False))
        return
    until = f" until {done['until']}" if done.get("until") else ""
    was = "" if done.get("was_set", True) else " (it was not set)"
    print(f"{done['done']} {done['target']}{until}, by {done['by']}{was}; every instance within a second")


def cmd_change(args: argparse.Namespace) -> int:
    """pause, resume, close, open, announce (or announce --clear)."""
    action = args.ops_command
    target = getattr(args, "target", None) or ""
    if action == "announce":
        if args.clear == bool(target):
            raise Refused("ivr ops announce: give an announcement id, or --clear")
        action = "announce-clear" if args.clear else "announce"
    controls, loaded = _controls(args), load_config(args)
    try:
        done = apply(controls, loaded, action, target, args.by, args.why or "", getattr(args, "for_", None),
                     getattr(args, "until", None))
    except OpsRefused as e:
        raise Refused(f"ivr ops {args.ops_command}: {e}") from e
    except redis.RedisError as e:
        raise Refused(f"ivr ops: Redis cannot be written ({type(e).__name__}): nothing changed") from e
    _say(args, done)
    return 0


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def cmd_status(args: argparse.Namespace) -> int:
    """The controls in force, the live figures per partner, the latest audit entries."""
    try:
        now = status(_controls(args), load_config(args), file_settings(args).call_ttl, audit=args.audit)
    except redis.RedisError as e:
        raise Refused(f"ivr ops status: Redis cannot be read ({type(e).__name__})") from e
    if args.json:
        print(json.dumps(now, ensure_ascii=False, indent=2))
        return 0
    print("controls in force:")
    for c in now["controls"] or []:
        print(f"  {c['kind']} {c['target']} since {c['since']} until {c['until'] or 'undone'}, by {c['by']}"
              + (f": {c['why']}" if c["why"] else ""))
    if not now["controls"]:
        print("  none")
    print()
    if now["partners"] is None:
        print("live figures: Redis cannot be read")
    else:
        rows = [["partner", "waiting", "longest", "max_wait", "counsellors", "places", "paused"]]
        for p in now["partners"]:
            places = f"{p['places']}/{p['capacity']}" if p["capacity"] else "-"
            rows.append([p["partner"], str(p["waiting"]), f"{p['longest_wait']}s", f"{p['max_wait']}s",
                         str(p["counsellors"]), places, "PAUSED" if p["paused"] else ""])
        print("\n".join(_table(rows)))
    print()
    print("audit (newest first):")
    for entry in now["audit"]:
        print(f"  {entry['at']} {entry.get('action')} {entry.get('target')} by {entry.get('by')}"
              + (f": {entry['why']}" if entry.get("why") else ""))
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Ask every instance to reload; print which applied which config hash and which refused."""
    controls = _controls(args)
    try:
        ident = controls.request_reload(args.by, args.why or "")
    except redis.RedisError as e:
        raise Refused(f"ivr ops reload: Redis cannot be written ({type(e).__name__})") from e
    print(f"reload {ident} asked by {args.by}; answers for {args.wait} s "
          "(a process answers at its next request; health checks count)")
    deadline = time.monotonic() + args.wait
    answers: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        answers = controls.reload_reports(ident)
    refused = 0
    for instance, ans in sorted(answers.items()):
        refused += ans["result"] == "refused"
        detail = "; ".join(ans.get("details") or [])
        print(f"  {instance:<28} {ans['result']:<9} {ans['hash']}  {iso(ans.get('at'))}"
              + (f"  {detail}" if detail else ""))
    if not answers:
        print("  no instance answered yet: check them with `ivr ops status` and their logs (reload_followed)")
    return 1 if refused or not answers else 0


def register(sub: Any) -> None:
    """Add `ivr ops ...` to the `ivr` command's subparsers."""
    ops = sub.add_parser("ops", help="live controls during a campaign: pause, close, announce, reload, status",
                         description="Live controls during a campaign, kept in Redis (REDIS_URL): every instance "
                         "obeys within a second. Each change needs --by NAME and is audited.", epilog=PLAYBOOK,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    subs = ops.add_subparsers(dest="ops_command", required=True)

    def change(name: str, what: str, target: str | None, timed: bool) -> argparse.ArgumentParser:
        p = subs.add_parser(name, help=what, description=what, epilog=PLAYBOOK,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        if target:
            p.add_argument("target", metavar=target, nargs="?" if name == "announce" else None)
        p.add_argument("--by", required=True, metavar="NAME", help="who you are (written to the audit log)")
        p.add_argument("--why", help="why, for the audit log and whoever comes on shift next")
        if timed:
            p.add_argument("--for", dest="for_", metavar="DURATION", help="ends by itself after 90s, 30m, 2h, 1d")
            p.add_argument("--until", metavar="INSTANT", help="ends by itself then, e.g. 2026-01-02T09:00:00+09:00")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(func=cmd_change)
        return p

    change("pause", "take a partner out of every route (its waiting callers move on)", "PARTNER", True)
    change("resume", "put a paused partner back", "PARTNER", False)
    change("close", "stop offering an option (its callers go to the general line; an urgent option's keep the "
           "urgent lane)", "OPTION", True)
    change("open", "offer a closed option again", "OPTION", False)
    announce = change("announce", "play a prepared announcement (menu.yaml) after the greeting", "ID", True)
    announce.add_argument("--clear", action="store_true", help="stop the announcement")
    st = subs.add_parser("status", help="controls in force, callers waiting, counsellors, places, the audit log")
    st.add_argument("--audit", type=int, default=10, help="audit entries shown (default 10)")
    st.add_argument("--json", action="store_true", help="print it as JSON")
    st.set_defaults(func=cmd_status)
    rl = subs.add_parser("reload", help="every instance reloads its config; prints who applied what or refused")
    rl.add_argument("--by", required=True, metavar="NAME", help="who you are (written to the audit log)")
    rl.add_argument("--why", help="why, for the audit log")
    rl.add_argument("--wait", type=float, default=5.0, help="seconds to collect the answers (default 5)")
    rl.set_defaults(func=cmd_reload)
    for p in subs.choices.values():
        file_options(p, "routing file the targets are checked against")
