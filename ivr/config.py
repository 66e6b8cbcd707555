"""The menu and routing files, validated together; the boot-time copy is kept for the fallback URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, request, url_for

from ivr.flow import Flow
from menus import Menu, load_menu
from routing import Routing, load_routing

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def hotline_number() -> str | None:
    """The number the caller dialled (Twilio's To): a <Dial> shows it to the partner, never the caller's own."""
    called = (request.values.get("To") or "").strip()
    return called if E164.match(called) else None


@dataclass(frozen=True)
class Loaded:
    menu: Menu
    routing: Routing
    flow: Flow


def load(menu_file: Path, routing_file: Path) -> Loaded:
    """Both files, cross-checked (every menu option has a chain). Raises ConfigError naming file and YAML path."""
    menu = load_menu(menu_file)
    routing = load_routing(routing_file, frozenset(o.id for o in menu.options))
    return Loaded(menu, routing, Flow(menu, routing, url_for, hotline_number))


class ConfigHolder:
    """`current` serves calls; `boot` never changes, so the fallback URL does not depend on later reloads."""

    def __init__(self, loaded: Loaded):
        self.boot = loaded
        self.current = loaded


def init_app(app: Flask) -> None:
    settings = app.extensions["ivr.settings"]
    app.extensions["ivr.config"] = ConfigHolder(load(settings.menu_file, settings.routing_file))
