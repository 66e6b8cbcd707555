"""What the `ivr` commands share: reading an instant, the file-only settings, the config files, the clock."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from common.facts import parse_instant
from ivr.clock import Clock
from ivr.settings import Settings, load_file_settings
from ivr.state.config import Loaded, load
from routing.model import Campaign


class Refused(Exception):
    """A command cannot go on; the message says why (exit status 2)."""


def instant(text: str) -> dt.datetime:
    """An instant given on the command line (with its zone), or argparse's usage error."""
    try:
        return parse_instant(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def file_settings(args: argparse.Namespace) -> Settings:
    """The file-only settings, read from the environment once per command and kept with its arguments."""
    if getattr(args, "file_settings", None) is None:
        args.file_settings = load_file_settings()
    return args.file_settings


def files(args: argparse.Namespace) -> tuple[Path, Path]:
    """The menu and routing files: --menu / --routing, else the settings (IVR_MENU_FILE, IVR_ROUTING_FILE)."""
    settings = file_settings(args)
    return (Path(getattr(args, "menu", None) or settings.menu_file),
            Path(getattr(args, "routing", None) or settings.routing_file))


def load_config(args: argparse.Namespace) -> Loaded:
    """Every config file, validated together, as the service would load them."""
    settings = file_settings(args)
    return load(*files(args), settings.partners_file, audio_dir=settings.audio_dir)


def audio_dir(args: argparse.Namespace) -> Path:
    """The recordings' folder (IVR_AUDIO_DIR)."""
    return file_settings(args).audio_dir


def now(args: argparse.Namespace) -> dt.datetime:
    """--at when given, else the clock (IVR_CLOCK may set it)."""
    at = getattr(args, "at", None)
    return at if at is not None else Clock.from_setting(file_settings(args).clock).now()


def campaign_of(loaded: Loaded, campaign_id: str, command: str) -> Campaign:
    """The campaign with this id, or a refusal listing the known ones."""
    found = next((c for c in loaded.routing.campaigns if c.id == campaign_id), None)
    if found is None:
        known = ", ".join(c.id for c in loaded.routing.campaigns)
        raise Refused(f"ivr {command}: no campaign '{campaign_id}'; known: {known}")
    return found


def language_option(loaded: Loaded) -> str | None:
    """The menu's option whose callers choose a language (offered while anyone can take them in one)."""
    return next((o.id for o in loaded.menu.options if o.choose_language), None)


def file_options(parser: argparse.ArgumentParser, routing_help: str = "routing file") -> None:
    """--menu and --routing, for a command that reads the config files."""
    parser.add_argument("--menu", help="menu file (default: IVR_MENU_FILE or the shipped one)")
    parser.add_argument("--routing", help=f"{routing_help} (default: IVR_ROUTING_FILE or the shipped one)")
