"""`ivr staffing`: the next campaign's seats per hour and option, from the last campaign's counts (the planning
itself, which needs the `tools` extra, is in ivr/tools/staffing.py and imported inside the command)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from common.facts import jst_day
from ivr.clock import Clock
from ivr.state.store import open_store
from ivr.tools.cli_common import Refused, campaign_of, file_options, file_settings, language_option, load_config

DURATION = re.compile(r"(\d+)\s*(s|m|min)?")


def seconds(text: str) -> float:
    """A duration on the command line: '60s', '2m' or '60' (seconds), or argparse's usage error."""
    found = DURATION.fullmatch(text.strip())
    if not found:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration; write e.g. 60s or 2m")
    return float(found.group(1)) * (60 if found.group(2) in ("m", "min") else 1)


def arrivals(text: str) -> dict[str, float]:
    """--arrivals-per-hour: '4' (each option) or 'general=6,women=2' (options not named: none)."""
    try:
        if "=" not in text:
            return {"*": float(text)}
        return {k.strip(): float(v) for k, v in (part.split("=", 1) for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not calls per hour; write e.g. 4 or general=6,women=2") \
            from None


def cmd_staffing(args: argparse.Namespace) -> int:
    """Print the seats each hour of the next campaign needs per option, the hours the partners on shift cannot cover,
    and write the plan as CSV and a heat-map."""
    from ivr.tools import report, staffing

    loaded = load_config(args)
    routing = loaded.routing
    nxt = campaign_of(loaded, args.campaign, "staffing")
    options = list(routing.plans[nxt.plan])
    past = None
    if args.past:
        before = campaign_of(loaded, args.past, "staffing")
        settings = file_settings(args)
        store = open_store(settings)
        store.fold_ended(jst_day(Clock.from_setting(settings.clock).now()), sweep=True)
        past = staffing.Past(before, report.read(store.client, before, progress=False))
        if past.calls == 0:
            print(f"no counts for {before.id}: nobody called in that window, or its counts are not in this store")
            past = None
    if past is None and args.arrivals_per_hour is None:
        raise Refused("ivr staffing: no past counts to plan from; give --from with a campaign that has counts, or "
                      "--arrivals-per-hour (e.g. 4, or general=6,women=2)")
    if past is None:
        print(f"using --arrivals-per-hour by hand: {args.arrivals_per_hour}")
    needs = staffing.plan(routing, nxt, options, past, given=args.arrivals_per_hour or {}, scale=args.scale,
                          aht=args.aht, within=args.answer_within, target=args.target,
                          language_option=language_option(loaded))
    source = f"from {past.campaign.id} ({past.calls} calls) x {args.scale:g}" if past else "arrivals given by hand"
    target = f"{args.target:.0%} answered within {args.answer_within:.0f} s"
    print(f"{nxt.id}: seats needed / places on shift per hour and option ({source}; {target}; Erlang C)")
    print(*staffing.table_lines(needs, options), sep="\n")
    short = [n for n in needs if n.short]
    print(f"{len(short)} option-hours short ('!': the partners on shift have fewer places than needed, or none is "
          "on shift; '-': no cap configured)")
    out = Path(args.out)
    print(staffing.write_csv(out / f"staffing-{nxt.id}.csv", needs))
    print(staffing.heatmap(out / f"staffing-{nxt.id}.png", nxt, needs, options,
                           f"{nxt.id}: seats needed per hour ({source}; {target}); red: short of places"))
    return 0


def register(sub: Any) -> None:
    """Add `ivr staffing` to the `ivr` command's subparsers."""
    st = sub.add_parser("staffing", help="seats needed per hour and option for a campaign, by Erlang C, from the "
                        "last campaign's counts, against the partners' places")
    st.add_argument("--campaign", required=True, help="the campaign to plan (its window and partners)")
    st.add_argument("--from", dest="past", help="the past campaign whose counts give arrivals and handling times")
    st.add_argument("--answer-within", type=seconds, default=60.0, help="answer within this time (default 60s)")
    st.add_argument("--target", type=float, default=0.8, help="share answered within that time (default 0.8)")
    st.add_argument("--scale", type=float, default=1.0, help="expected calls relative to the past (default 1.0)")
    st.add_argument("--arrivals-per-hour", type=arrivals, help="without past counts: calls per hour, e.g. 4 or "
                    "general=6,women=2")
    st.add_argument("--aht", type=seconds, default=1200.0, help="handling time when the past has no talk time "
                    "(default 1200s: set it from the partners' own records)")
    st.add_argument("--out", default="reports", help="the folder for the CSV and the heat-map (default: reports)")
    st.set_defaults(func=cmd_staffing)
    file_options(st)
