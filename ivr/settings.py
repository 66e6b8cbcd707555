"""Typed settings, read once at boot: defaults, then the environment, then the mapping a caller passes."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from menus.menu import DEFAULT_FILE as DEFAULT_MENU
from routing.decide import DEFAULT_FILE as DEFAULT_ROUTING

DEFAULT_AUDIO = DEFAULT_MENU.parent / "audio"

ENV_KEYS = ("TWILIO_AUTH_TOKEN", "REDIS_URL", "IVR_CLOCK", "IVR_PUBLIC_URL", "IVR_HASH_KEY", "IVR_MENU_FILE",
            "IVR_ROUTING_FILE", "IVR_PARTNERS_FILE", "IVR_ADMIN_TOKEN", "IVR_RUNTIME_DIR", "IVR_LOG_LEVEL",
            "IVR_LOG_FORMAT", "IVR_CALL_TTL", "TWILIO_ACCOUNT_SID", "IVR_SMS_FROM", "IVR_CALLER_ID",
            "IVR_STATE_DIR", "IVR_ENTRY_NUMBERS", "IVR_AUDIO_DIR", "IVR_AUDIO_URL")


class SettingsError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    auth_token: str
    redis_url: str | None
    clock: str | None
    public_url: str | None
    hash_key: bytes
    menu_file: Path
    routing_file: Path
    partners_file: Path | None  # production contacts, outside the repository
    admin_token: str | None  # enables /admin/*; unset: the admin endpoints answer 404
    runtime_dir: Path | None  # where the last good config is kept for workers started by a reload
    account_sid: str | None  # with the auth token, Twilio's REST API (SMS of referral lines)
    sms_from: str | None  # the number or sender the SMS comes from; unset: SMS is not offered
    caller_id: str | None  # shown to phone partners when the number dialled is not a plain E.164 number
    state_dir: Path  # where the embedded store keeps its counts between runs (no call data)
    entries: dict[str, str]  # the hotline's own numbers (To) -> entry label, e.g. +81xxxxxxxxx -> 9999
    log_level: str
    log_format: str  # json, console, or auto (json when not on a terminal)
    call_ttl: int
    audio_dir: Path  # recorded prompts, <dir>/<language>/<clip>.wav
    audio_url: str | None  # where Twilio fetches them when not from this service's /audio/ (a CDN or bucket)


def _entries(text: str) -> dict[str, str]:
    """'+81xxx=9999,+81yyy=0120' -> {'+81xxx': '9999', '+81yyy': '0120'}: how each of our numbers is reached."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        number, sep, label = part.partition("=")
        if not sep or not number.strip().startswith("+") or not label.strip().isalnum():
            raise SettingsError(f"IVR_ENTRY_NUMBERS: '{part}' should be +<our number>=<label>, e.g. +81120494949=0120")
        out[number.strip()] = label.strip()
    return out


def load_settings(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    raw: dict[str, Any] = {k: v for k, v in (environ if environ is not None else os.environ).items() if k in ENV_KEYS}
    raw.update({k: v for k, v in (overrides or {}).items() if k in ENV_KEYS})
    token = (raw.get("TWILIO_AUTH_TOKEN") or "").strip()
    if not token:
        raise SettingsError("TWILIO_AUTH_TOKEN is not set: without it no Twilio request can be verified "
                            "(set it to the account's auth token)")
    public_url = (raw.get("IVR_PUBLIC_URL") or "").strip().rstrip("/") or None
    if public_url and not public_url.startswith(("https://", "http://")):
        raise SettingsError(f"IVR_PUBLIC_URL must start with https:// (got '{public_url}')")
    audio_url = (raw.get("IVR_AUDIO_URL") or "").strip().rstrip("/") or None
    if audio_url and not audio_url.startswith(("https://", "http://")):
        raise SettingsError(f"IVR_AUDIO_URL must be an https:// URL (got '{audio_url}')")
    secret = raw.get("IVR_HASH_KEY") or ""
    # Without a dedicated key, derive one from the token, so hashes agree across workers and instances.
    hash_key = secret.encode() if secret else hmac.new(token.encode(), b"ivr call hash", hashlib.sha256).digest()
    level = str(raw.get("IVR_LOG_LEVEL") or "info").lower()
    if level not in ("debug", "info", "warning", "error"):
        raise SettingsError(f"IVR_LOG_LEVEL must be one of debug, info, warning, error (got '{level}')")
    fmt = str(raw.get("IVR_LOG_FORMAT") or "auto").lower()
    if fmt not in ("auto", "json", "console"):
        raise SettingsError(f"IVR_LOG_FORMAT must be one of auto, json, console (got '{fmt}')")
    try:
        ttl = int(raw.get("IVR_CALL_TTL") or 6 * 3600)
    except ValueError:
        raise SettingsError(f"IVR_CALL_TTL must be a whole number of seconds (got '{raw['IVR_CALL_TTL']}')") from None
    return Settings(
        auth_token=token,
        redis_url=(raw.get("REDIS_URL") or "").strip() or None,
        clock=(raw.get("IVR_CLOCK") or "").strip() or None,
        public_url=public_url,
        hash_key=hash_key,
        menu_file=Path(raw.get("IVR_MENU_FILE") or DEFAULT_MENU),
        routing_file=Path(raw.get("IVR_ROUTING_FILE") or DEFAULT_ROUTING),
        partners_file=Path(raw["IVR_PARTNERS_FILE"]) if raw.get("IVR_PARTNERS_FILE") else None,
        admin_token=(raw.get("IVR_ADMIN_TOKEN") or "").strip() or None,
        runtime_dir=Path(raw["IVR_RUNTIME_DIR"]) if raw.get("IVR_RUNTIME_DIR") else None,
        account_sid=(raw.get("TWILIO_ACCOUNT_SID") or "").strip() or None,
        sms_from=(raw.get("IVR_SMS_FROM") or "").strip() or None,
        caller_id=(raw.get("IVR_CALLER_ID") or "").strip() or None,
        entries=_entries(str(raw.get("IVR_ENTRY_NUMBERS") or "")),
        state_dir=Path(raw.get("IVR_STATE_DIR") or Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local"
                                                           / "state") / "ivr"),
        log_level=level,
        log_format=fmt,
        call_ttl=max(60, ttl),
        audio_dir=Path(raw.get("IVR_AUDIO_DIR") or DEFAULT_AUDIO),
        audio_url=audio_url,
    )
