"""The `ivr` command: serve the webhooks, place a simulated call, check the config, and the operators' tools.

Commands that only read files (config check, route, snapshot, coverage, prompts, campaign propose, report; in
`ivr.tools.cli_files`) take `Settings`, which need no Twilio token; `serve` takes `ServiceSettings`, which do. The
web app, the stand-in and the tools are imported inside the command that uses them: `ivr config check` need not load
Flask, and the chart and report tools need the `tools` extra (matplotlib, tqdm, ruamel.yaml, holidays), which a
web-only image does not install.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import tempfile
from pathlib import Path

from common.configfile import ConfigError
from common.facts import JST
from ivr.clock import Clock
from ivr.settings import (
    SettingsError,
    child_environment,
    configured_token,
    load_server_settings,
    load_settings,
)
from ivr.state.config import load
from ivr.state.embedded import state_file
from ivr.state.private import private_dir
from ivr.tools import cli_files, cli_staffing, counsellors, emergency, fallback, ops, twilio_side
from ivr.tools.cli_common import Refused, instant


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
    metrics_dir = settings.metrics_dir or temp / f"ivr-metrics-{args.port}"
    runtime_dir = settings.runtime_dir or temp / f"ivr-runtime-{args.port}"
    private = [("IVR_RUNTIME_DIR", runtime_dir), ("PROMETHEUS_MULTIPROC_DIR", metrics_dir)]
    try:  # each 0700 and this user's own: a planted one (a symlink, another user's, open to writers) is refused
        for variable, path in private + ([] if settings.redis_url else [("IVR_STATE_DIR", settings.state_dir)]):
            private_dir(path, variable)
    except OSError as e:
        print(f"ivr serve: not starting: {e}", file=sys.stderr)
        return 2
    workers = args.workers or server.web_concurrency
    if not settings.redis_url:  # workers would each keep their own counts and overwrite each other's file
        asked = "" if workers == 1 else f" (not the {workers} asked for)"
        print(f"ivr serve: REDIS_URL is not set: one worker{asked}, with the embedded store keeping its counts in "
              f"{state_file(settings.state_dir)}", file=sys.stderr, flush=True)
        workers = 1
    env = child_environment(
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        IVR_RUNTIME_DIR=str(runtime_dir),
        IVR_BIND=f"{args.host}:{args.port}",
        WEB_CONCURRENCY=str(workers),  # gunicorn reads it too, and trips on a blank
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
    c.add_argument("--at", type=instant, help="the clock's start instant, e.g. 2025-05-03T03:00:00+09:00")
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

    cli_files.register(sub)
    cli_staffing.register(sub)
    counsellors.register(sub)
    fallback.register(sub)
    twilio_side.register(sub)
    ops.register(sub)
    emergency.register(sub)
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
