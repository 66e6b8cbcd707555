"""The `ivr` commands that read the config files and the counts, never serve: config check, route, snapshot,
coverage, report, prompts, campaign propose. They take `Settings`, which need no Twilio token; the tools they use
need the `tools` extra and are imported inside the command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from common.configfile import ConfigError
from common.facts import JST, jst_day
from ivr.call.speaking import missing_audio
from ivr.clock import Clock
from ivr.state.store import open_store
from ivr.tools import fallback
from ivr.tools.cli_common import (
    audio_dir,
    campaign_of,
    file_options,
    file_settings,
    files,
    instant,
    language_option,
    load_config,
    now,
)
from routing.check import warnings
from routing.preview import coverage_table, route_lines, snapshot


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate every config file and the recordings a language without a voice needs; print the warnings."""
    menu, routing_file = files(args)
    try:
        loaded = load_config(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    r = loaded.routing
    m = loaded.menu
    unsaid = [f"{audio_dir(args) / code}: {clip}.wav: recording does not exist, and {code} has no voice"
              for code, clips in missing_audio(m, r.spec.referrals, loaded.recordings).items()
              if m.spec.languages[code].voice is None for clip in clips]
    if unsaid:  # a caller would hear English instead of their language
        print("\n".join(unsaid), file=sys.stderr)
        return 1
    print(f"ok: {menu} ({len(m.all_option_ids)} options in {len(m.layouts)} key layouts, "
          f"{len(m.spec.languages)} languages)")
    print(f"ok: {routing_file} ({len(r.campaigns)} campaigns, {len(r.partners)} partners, "
          f"{len(r.spec.referrals)} referral lines)")
    found = [*warnings(r, str(routing_file), now(args)),
             *fallback.drift(loaded, routing_file, file_settings(args).state_dir)]
    for w in found:
        print(w, file=sys.stderr)
    return 3 if found and not args.allow_warnings else 0


def cmd_route(args: argparse.Namespace) -> int:
    """Print who answers each option at an instant, and what follows them (the language option: through its chain)."""
    loaded = load_config(args)
    print("\n".join(route_lines(loaded.routing, now(args), args.option, args.language, language_option(loaded))))
    return 0


def snapshot_file(routing_file: Path) -> Path:
    """Where the golden decisions of a routing file are kept."""
    return routing_file.parent / "snapshots" / f"{routing_file.stem}.txt"


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Write the golden decisions file, or compare it with the config (--check)."""
    loaded = load_config(args)
    path = Path(args.out) if args.out else snapshot_file(files(args)[1])
    text = snapshot(loaded.routing, language_option(loaded))
    if args.check:
        if path.exists() and path.read_text(encoding="utf-8") == text:
            print(f"ok: {path} matches the config")
            return 0
        print(f"{path} does not match the config: run `make snapshot` and review the diff", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} ({len(text.splitlines())} lines)")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    """Print a campaign's coverage table and draw its chart."""
    loaded = load_config(args)
    r = loaded.routing
    campaign = campaign_of(loaded, args.campaign, "coverage")
    print("\n".join(coverage_table(r, campaign, language_option(loaded))))
    from ivr.tools.charts import coverage_png

    out = coverage_png(r, campaign.id, Path(args.out or f"coverage-{campaign.id}.png"), language_option(loaded))
    print(f"chart: {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a campaign's volume report (CSV, breakdowns, charts; published: the summary) from the counts."""
    from ivr.tools import report
    loaded = load_config(args)
    r = loaded.routing
    campaign = campaign_of(loaded, args.campaign, "report")
    settings = file_settings(args)
    store = open_store(settings)
    # every ended day's HyperLogLog becomes its plain count first (no key needed): the last day of a campaign after
    # which nobody called is folded here, not left to expire
    store.fold_ended(jst_day(Clock.from_setting(settings.clock).now()), sweep=True)
    days = report.read(store.client, campaign)
    options = list(loaded.routing.plans[campaign.plan])
    partners = report.published.read_partners(store.client, campaign, [d.date for d in days], list(r.partners))
    names = {p.id: p.name for p in r.partners.values()}
    for path in report.write(Path(args.out), campaign, days, options, args.publish, partners, names):
        print(path)
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    """The translators' and voice actors' tools: export, import, record, check; and the hold sound callers hear."""
    if args.prompts_command == "hold":  # our own synthesis: no menu read, nothing of the tools extra needed
        from ivr.tools import hold
        print(f"wrote {hold.write(audio_dir(args), args.out)} ({hold.HOLD_SECONDS} s)")
        return 0
    from ivr.tools import prompts
    menu_file, routing_file = files(args)
    if args.prompts_command == "export":
        print(f"wrote {args.out}: {prompts.export(menu_file, Path(args.out))} prompts")
        return 0
    if args.prompts_command == "import":
        changed = prompts.import_csv(menu_file, Path(args.file))
        print(f"{menu_file}: {len(changed)} prompts changed", *(f"  {c}" for c in changed), sep="\n")
        return 0
    if args.prompts_command == "record":
        written = prompts.record(menu_file, routing_file, audio_dir(args), args.lang, voice=args.voice,
                                 replace=args.replace)
        print(f"{audio_dir(args) / args.lang}: {len(written)} placeholder recordings written")
        return 0
    found, notes = prompts.check(menu_file, routing_file, audio_dir(args))
    print(*found, *notes, f"{len(found)} problems" if found else f"ok: {menu_file}: every prompt in every language, "
          "voices match, recordings present", sep="\n")
    return 1 if found else 0


def cmd_propose(args: argparse.Namespace) -> int:
    """Print provisional GW and New Year windows for a year, as config to review."""
    from routing.propose import propose, render_yaml
    try:
        proposals = propose(args.year)
    except ValueError as e:
        print(f"ivr campaign propose: {e}", file=sys.stderr)
        return 2
    print(render_yaml(proposals, now(args).astimezone(JST).date()), end="")
    return 0


def register(sub: Any) -> None:
    """Add these commands to the `ivr` command's subparsers."""
    cfg = sub.add_parser("config", help="configuration tools")
    cs = cfg.add_subparsers(dest="config_command", required=True)
    chk = cs.add_parser("check", help="validate the menu and routing files (exit 0 only when clean)")
    chk.add_argument("--at", type=instant, help="the instant warnings are judged at (default: the clock)")
    chk.add_argument("--allow-warnings", action="store_true", help="exit 0 when there are warnings but no errors")
    chk.set_defaults(func=cmd_config_check)

    rt = sub.add_parser("route", help="who answers each option at an instant, and what follows")
    rt.add_argument("--at", type=instant, help="the instant (default: the clock)")
    rt.add_argument("--option", help="only this option")
    rt.add_argument("--language", help="mark partners that take this language through an interpreter, or not at all")
    rt.set_defaults(func=cmd_route)

    sn = sub.add_parser("snapshot", help="write (or --check) the golden file of decisions at every hour")
    sn.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 on a difference")
    sn.add_argument("--out", help="the file (default: routing/snapshots/<routing file>.txt)")
    sn.set_defaults(func=cmd_snapshot)

    cv = sub.add_parser("coverage", help="a campaign's coverage as a table and a PNG chart")
    cv.add_argument("--campaign", required=True)
    cv.add_argument("--out", help="the PNG file (default: coverage-<campaign>.png)")
    cv.set_defaults(func=cmd_coverage)

    rp = sub.add_parser("report", help="a campaign's volume report: CSV per day and option, and charts")
    rp.add_argument("--campaign", required=True)
    rp.add_argument("--out", default="reports", help="the folder to write to (default: reports)")
    rp.add_argument("--publish", action="store_true", help="for publication: counts under 5 as '<5', and what would "
                    "give them away hidden; charts from the published numbers; a summary for the record")
    rp.set_defaults(func=cmd_report)

    pp = sub.add_parser("prompts", help="prompts for translators and voice actors, and the hold sound")
    pp.set_defaults(func=cmd_prompts)
    pps = pp.add_subparsers(dest="prompts_command", required=True)
    pe = pps.add_parser("export", help="every prompt in every language to a CSV")
    pe.add_argument("--out", default="prompts.csv")
    pi = pps.add_parser("import", help="read a translated CSV back into the menu file, validated first")
    pi.add_argument("file")
    pc = pps.add_parser("check", help="missing translations and recordings, broken placeholders, wrong-language voices")
    pw = pps.add_parser("record", help="placeholder recordings with espeak-ng for the clips a language lacks")
    pw.add_argument("--lang", required=True, help="language code in the menu file, e.g. ne")
    pw.add_argument("--voice", help="espeak-ng voice (default: the language's code)")
    pw.add_argument("--replace", action="store_true", help="write every clip again, recorded or not")
    ph = pps.add_parser("hold", help="write the hold sound callers hear while they wait (made here, ours to ship)")
    ph.add_argument("--out", help="the WAV file (default: hold.wav in IVR_AUDIO_DIR, menus/audio/ when unset)")
    for sp_ in (pe, pi, pc, pw):
        file_options(sp_, "routing file, for referral names")

    cp = sub.add_parser("campaign", help="campaign tools")
    cps = cp.add_subparsers(dest="campaign_command", required=True)
    pr = cps.add_parser("propose", help="provisional GW and New Year windows for a year, as config to review")
    pr.add_argument("--year", type=int, required=True)
    pr.add_argument("--at", type=instant, help="the date written as 'checked' (default: the clock)")
    pr.set_defaults(func=cmd_propose)

    for sp in (chk, rt, sn, cv, rp):
        file_options(sp)
