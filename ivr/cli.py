"""The `ivr` command: serve the webhooks, place a simulated call, check the config, and the operators' tools.

Commands that only read files (config check, route, snapshot, coverage, prompts, campaign propose, report) take
`Settings`, which need no Twilio token; `serve` takes `ServiceSettings`, which do. The web app, the stand-in and the
tools are imported inside the command that uses them: `ivr config check` need not load Flask, and the chart and
report tools need the `tools` extra (matplotlib, tqdm, ruamel.yaml, holidays), which a web-only image does not install.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import signal
import sys
import tempfile
from pathlib import Path

from common.configfile import ConfigError
from common.facts import JST, parse_instant
from ivr.call.speaking import missing_audio
from ivr.clock import Clock
from ivr.settings import (
    Settings,
    SettingsError,
    child_environment,
    configured_token,
    load_file_settings,
    load_server_settings,
    load_settings,
)
from ivr.state.config import Loaded, load
from ivr.state.store import open_store
from routing.check import warnings
from routing.model import Campaign
from routing.preview import coverage_table, route_lines, snapshot


def _instant(text: str) -> dt.datetime:
    try:
        return parse_instant(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    """Check the settings and the config, then exec gunicorn with the service's config file."""
    try:
        settings = load_settings()
        server = load_server_settings()  # WEB_CONCURRENCY and the directories, as gunicorn's config file reads them
        load(settings.menu_file, settings.routing_file, settings.partners_file, audio_dir=settings.audio_dir)
    except (SettingsError, ConfigError) as e:
        print(f"ivr serve: not starting: {e}", file=sys.stderr)
        return 2
    temp = Path(tempfile.gettempdir())
    env = child_environment(
        PROMETHEUS_MULTIPROC_DIR=str(settings.metrics_dir or temp / f"ivr-metrics-{args.port}"),
        IVR_RUNTIME_DIR=str(settings.runtime_dir or temp / f"ivr-runtime-{args.port}"),
        IVR_BIND=f"{args.host}:{args.port}",
        WEB_CONCURRENCY=str(args.workers or server.web_concurrency),  # gunicorn reads it too, and trips on a blank
    )
    conf = Path(__file__).with_name("gunicorn_conf.py")
    argv = ["gunicorn", "-c", str(conf), "ivr.app:create_app()"]
    os.execvpe(sys.executable, [sys.executable, "-m", *argv], env)  # noqa: S606


def cmd_call(args: argparse.Namespace) -> int:
    """Place a simulated call through the stand-in and print what the caller hears; exit 1 if they were stranded."""
    from ivr.tools.standin import Event, InProcess, OverHttp, StandIn, Transport

    def show(event: Event) -> None:
        print(event, flush=True)

    keys = [k for token in (args.press or []) for k in token.split(",")]
    key_source = None if args.press is not None else _ask_key
    transport: Transport
    if args.url:
        token = args.token or configured_token()
        if not token:
            print("ivr call: --url needs the server's auth token (--token or TWILIO_AUTH_TOKEN)", file=sys.stderr)
            return 2
        transport, base, where = OverHttp(), args.url, args.url
    else:
        from ivr.app import create_app

        # The stand-in signs with the token the app checks: --token, TWILIO_AUTH_TOKEN, or one made up for this one
        # in-process call (no request leaves the process, so no real token is needed for a rehearsal).
        token = args.token or configured_token() or secrets.token_hex(16)
        overrides: dict[str, object] = {"TWILIO_AUTH_TOKEN": token,
                                        "IVR_LOG_LEVEL": "info" if args.verbose else "warning"}
        if args.at:
            overrides["CLOCK"] = Clock(args.at)
        try:
            app = create_app(overrides)
        except (SettingsError, ConfigError) as e:
            print(f"ivr call: {e}", file=sys.stderr)
            return 2
        store = app.extensions["ivr.store"].kind
        transport, base, where = InProcess(app), "https://hotline.invalid", f"in-process app, {store} store"
    when = (args.at or Clock().now()).astimezone(JST)
    print(f"Simulated call to {args.to} at {when:%Y-%m-%d %H:%M:%S} JST ({where})")
    standin = StandIn(transport, token, base, keys=keys, key_source=key_source, dial_status=args.dial_status,
                      queue_result=args.queue_result, wait_rounds=args.wait_rounds,
                      queue_position=args.queue_position, avg_queue_time=args.avg_queue_time, caller=args.caller,
                      called=args.to, printer=show)
    result = standin.call("/counselor/incoming" if args.counselor else "/voice/incoming")
    if result.connected:
        print(f"=> The caller reached a person: {result.connected.target} ({result.connected.result}).")
    elif result.stranded:
        print("=> STRANDED: the call ended with nothing said.")
        return 1
    else:
        print("=> The call ended after spoken alternatives (no person connected).")
    return 0


def _ask_key() -> str | None:
    try:
        return input("  press a key (Enter for silence): ").strip() or None
    except EOFError:
        return None


def _settings(args: argparse.Namespace) -> Settings:
    """The file-only settings, read from the environment once per command and kept with its arguments."""
    if getattr(args, "file_settings", None) is None:
        args.file_settings = load_file_settings()
    return args.file_settings


def _files(args: argparse.Namespace) -> tuple[Path, Path]:
    """The menu and routing files: --menu / --routing, else the settings (IVR_MENU_FILE, IVR_ROUTING_FILE)."""
    settings = _settings(args)
    return (Path(getattr(args, "menu", None) or settings.menu_file),
            Path(getattr(args, "routing", None) or settings.routing_file))


def _load(args: argparse.Namespace) -> Loaded:
    """Every config file, validated together, as the service would load them."""
    settings = _settings(args)
    return load(*_files(args), settings.partners_file, audio_dir=settings.audio_dir)


def _audio_dir(args: argparse.Namespace) -> Path:
    return _settings(args).audio_dir


def _now(args: argparse.Namespace) -> dt.datetime:
    at = getattr(args, "at", None)
    return at if at is not None else Clock.from_setting(_settings(args).clock).now()


def cmd_config_check(args: argparse.Namespace) -> int:
    """Validate every config file and the recordings a language without a voice needs; print the warnings."""

    menu, routing_file = _files(args)
    try:
        loaded = _load(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    r = loaded.routing
    m = loaded.menu
    unsaid = [f"{_audio_dir(args) / code}: {clip}.wav: recording does not exist, and {code} has no voice"
              for code, clips in missing_audio(m, r.spec.referrals, loaded.recordings).items()
              if m.spec.languages[code].voice is None for clip in clips]
    if unsaid:  # a caller would hear English instead of their language
        print("\n".join(unsaid), file=sys.stderr)
        return 1
    print(f"ok: {menu} ({len(m.all_option_ids)} options in {len(m.layouts)} key layouts, "
          f"{len(m.spec.languages)} languages)")
    print(f"ok: {routing_file} ({len(r.campaigns)} campaigns, {len(r.partners)} partners, "
          f"{len(r.spec.referrals)} referral lines)")
    found = list(warnings(r, str(routing_file), _now(args)))
    for w in found:
        print(w, file=sys.stderr)
    return 3 if found and not args.allow_warnings else 0


class Refused(Exception):
    """A command cannot go on; the message says why (exit status 2)."""


def _campaign(loaded: Loaded, campaign_id: str, command: str) -> Campaign:
    found = next((c for c in loaded.routing.campaigns if c.id == campaign_id), None)
    if found is None:
        known = ", ".join(c.id for c in loaded.routing.campaigns)
        raise Refused(f"ivr {command}: no campaign '{campaign_id}'; known: {known}")
    return found


def cmd_route(args: argparse.Namespace) -> int:
    """Print who answers each option at an instant, and what follows them (the language option: through its chain)."""
    loaded = _load(args)
    print("\n".join(route_lines(loaded.routing, _now(args), args.option, args.language, _language_option(loaded))))
    return 0


def _language_option(loaded: Loaded) -> str | None:
    """The menu's option whose callers choose a language (offered while anyone can take them in one)."""
    return next((o.id for o in loaded.menu.options if o.choose_language), None)


def snapshot_file(routing_file: Path) -> Path:
    """Where the golden decisions of a routing file are kept."""
    return routing_file.parent / "snapshots" / f"{routing_file.stem}.txt"


def cmd_snapshot(args: argparse.Namespace) -> int:
    """Write the golden decisions file, or compare it with the config (--check)."""
    loaded = _load(args)
    path = Path(args.out) if args.out else snapshot_file(_files(args)[1])
    text = snapshot(loaded.routing, _language_option(loaded))
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
    loaded = _load(args)
    r = loaded.routing
    campaign = _campaign(loaded, args.campaign, "coverage")
    print("\n".join(coverage_table(r, campaign, _language_option(loaded))))
    from ivr.tools.charts import coverage_png

    out = coverage_png(r, campaign.id, Path(args.out or f"coverage-{campaign.id}.png"), _language_option(loaded))
    print(f"chart: {out}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write a campaign's volume report (CSV and charts) from the anonymized counts."""
    from ivr.tools import report

    loaded = _load(args)
    campaign = _campaign(loaded, args.campaign, "report")
    days = report.read(open_store(_settings(args)).client, campaign)
    options = list(loaded.routing.plans[campaign.plan])
    for path in report.write(Path(args.out), campaign, days, options, args.publish):
        print(path)
    return 0


def cmd_prompts(args: argparse.Namespace) -> int:
    """The translators' and voice actors' tools: export, import, record, check; and the hold sound callers hear."""
    if args.prompts_command == "hold":  # our own synthesis: no menu read, nothing of the tools extra needed
        from ivr.tools import hold
        print(f"wrote {hold.write(_audio_dir(args), args.out)} ({hold.HOLD_SECONDS} s)")
        return 0
    from ivr.tools import prompts
    menu_file, routing_file = _files(args)
    if args.prompts_command == "export":
        print(f"wrote {args.out}: {prompts.export(menu_file, Path(args.out))} prompts")
        return 0
    if args.prompts_command == "import":
        changed = prompts.import_csv(menu_file, Path(args.file))
        print(f"{menu_file}: {len(changed)} prompts changed", *(f"  {c}" for c in changed), sep="\n")
        return 0
    if args.prompts_command == "record":
        written = prompts.record(menu_file, routing_file, _audio_dir(args), args.lang, voice=args.voice,
                                 replace=args.replace)
        print(f"{_audio_dir(args) / args.lang}: {len(written)} placeholder recordings written")
        return 0
    found, notes = prompts.check(menu_file, routing_file, _audio_dir(args))
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
    print(render_yaml(proposals, _now(args).astimezone(JST).date()), end="")
    return 0


def parser() -> argparse.ArgumentParser:
    """The `ivr` command's arguments."""
    p = argparse.ArgumentParser(prog="ivr", description="The #9999 hotline router")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the Twilio webhooks with gunicorn")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--workers", type=int, default=0, help="gunicorn workers (default: WEB_CONCURRENCY or 2 per core)")
    s.set_defaults(func=cmd_serve)

    c = sub.add_parser("call", help="place a simulated call, as Twilio would, and print what the caller hears")
    c.add_argument("--url", help="a running server's base URL (default: an in-process app)")
    c.add_argument("--token", help="auth token to sign with (default: TWILIO_AUTH_TOKEN)")
    c.add_argument("--at", type=_instant, help="the clock's start instant, e.g. 2025-05-03T03:00:00+09:00")
    c.add_argument("--press", nargs="*", metavar="KEY",
                   help="keys in order ('-' for silence); without --press, keys are read from the terminal")
    c.add_argument("--dial-status", default="completed",
                   help="DialCallStatus a <Dial> ends with: completed, busy, no-answer, failed, canceled")
    c.add_argument("--queue-result", default="bridged",
                   help="QueueResult an <Enqueue> ends with: bridged, hangup, queue-full, error, system-error")
    c.add_argument("--wait-rounds", type=int, nargs="+", default=[1], metavar="N",
                   help="how many times each queue's waitUrl is played, queue by queue (the last repeats)")
    c.add_argument("--queue-position", type=int, default=1, help="QueuePosition the waitUrl is told")
    c.add_argument("--avg-queue-time", type=int, default=60, help="AvgQueueTime (seconds) the waitUrl is told")
    c.add_argument("--from", dest="caller", default="+819000000000", help="the caller's number ('anonymous' too)")
    c.add_argument("--to", default="+81120494949", help="the hotline number dialled")
    c.add_argument("--verbose", action="store_true", help="show the service's log lines too")
    c.add_argument("--counselor", action="store_true",
                   help="call the counsellors' line (/counselor/incoming) instead; --from is the counsellor's phone")
    c.set_defaults(func=cmd_call)

    cfg = sub.add_parser("config", help="configuration tools")
    cs = cfg.add_subparsers(dest="config_command", required=True)
    chk = cs.add_parser("check", help="validate the menu and routing files (exit 0 only when clean)")
    chk.add_argument("--at", type=_instant, help="the instant warnings are judged at (default: the clock)")
    chk.add_argument("--allow-warnings", action="store_true", help="exit 0 when there are warnings but no errors")
    chk.set_defaults(func=cmd_config_check)

    rt = sub.add_parser("route", help="who answers each option at an instant, and what follows")
    rt.add_argument("--at", type=_instant, help="the instant (default: the clock)")
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
    rp.add_argument("--publish", action="store_true", help="show counts under 5 as '<5', for publication")
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
        sp_.add_argument("--menu", help="menu file (default: IVR_MENU_FILE or the shipped one)")
        sp_.add_argument("--routing", help="routing file, for referral names (default: IVR_ROUTING_FILE or shipped)")

    cp = sub.add_parser("campaign", help="campaign tools")
    cps = cp.add_subparsers(dest="campaign_command", required=True)
    pr = cps.add_parser("propose", help="provisional GW and New Year windows for a year, as config to review")
    pr.add_argument("--year", type=int, required=True)
    pr.add_argument("--at", type=_instant, help="the date written as 'checked' (default: the clock)")
    pr.set_defaults(func=cmd_propose)

    for sp in (chk, rt, sn, cv, rp):
        sp.add_argument("--menu", help="menu file (default: IVR_MENU_FILE or the shipped one)")
        sp.add_argument("--routing", help="routing file (default: IVR_ROUTING_FILE or the shipped one)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one `ivr` command; config problems exit 1, refusals and bad settings exit 2."""
    if hasattr(signal, "SIGPIPE"):  # `ivr call ... | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:  # the files' problems, each with file, YAML path and what is allowed
        print(e, file=sys.stderr)
        return 1
    except (Refused, SettingsError) as e:
        print(e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
