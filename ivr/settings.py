"""The service's settings: read from the environment in this one module, typed, checked once at boot.

Three pydantic-settings classes, one per kind of process:

- `Settings`: what every command may read without a secret being required (file paths, display, the store, and the
  Twilio token when it is set). File-only commands (`ivr config check`, `ivr route`, `ivr snapshot`, ...) build it
  with `load_file_settings()`, so they never need a made-up Twilio token.
- `ServiceSettings(Settings)`: the web service, its webhooks and its RQ jobs; the Twilio auth token is required and
  the other secrets live here. Built with `load_settings()`.
- `ServerSettings`: what gunicorn's config file needs (bind address, worker count, REDIS_URL), no token. Built with
  `load_server_settings()`. It shares the metrics and runtime directories with `ServiceSettings`.

Each field's validation alias is its environment variable. Values come from `overrides` (keyword arguments, by
variable name) first, then from pydantic-settings' environment source, verbatim: IVR_ENTRY_NUMBERS keeps its comma
format and nothing is JSON-decoded. A blank or whitespace-only value counts as unset.

A wrong value stops the command with `SettingsError`, one line naming the variable and what is allowed. Secrets
(the auth token, the hash key, the admin token, a password in REDIS_URL) are never echoed in an error or a repr.

`child_environment()` hands the environment on to a child process (`ivr serve` execs gunicorn).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from common.facts import parse_instant
from ivr.deployment import Text, TwilioSide, invalid, masked_url, sentinel_address
from menus.menu import DEFAULT_FILE as DEFAULT_MENU
from routing.decide import DEFAULT_FILE as DEFAULT_ROUTING

DEFAULT_AUDIO = DEFAULT_MENU.parent / "audio"
DEFAULT_CALL_TTL = 6 * 3600  # seconds a call's record is kept in the store
MIN_CALL_TTL = 60
DEFAULT_BIND = "127.0.0.1:8000"
HASH_KEY_CONTEXT = b"ivr call hash"  # derives the call-hash key from the auth token when IVR_HASH_KEY is unset
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://")
WEB_SCHEMES = ("https://", "http://")
LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["auto", "json", "console"]  # auto: JSON when not on a terminal
SECRETS = frozenset({"TWILIO_AUTH_TOKEN", "IVR_HASH_KEY", "IVR_ADMIN_TOKEN", "TWILIO_API_SECRET"})
_MISSING = {"TWILIO_AUTH_TOKEN": "TWILIO_AUTH_TOKEN is not set: without it no Twilio request can be verified "
                                 "(set it to the account's auth token)"}
_SCRUB_MIN = 8  # secrets at least this long are blanked out of any error message, whichever variable held them


class SettingsError(Exception):
    """A setting is missing or wrong; the one-line message names the variable and what is allowed."""

    def __init__(self, message: str, variable: str | None = None):
        super().__init__(message)
        self.variable = variable


def _shown(value: object) -> str:
    """A value quoted for an error message, on one line, shortened, with any user:password@ in a URL masked."""
    text = value if isinstance(value, str) else str(value)
    text = masked_url(text)
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _blank(value: object) -> bool:
    """None or a string of only whitespace: the setting is treated as unset."""
    return value is None or (isinstance(value, str | bytes) and not value.strip())


def _whole(value: object, least: int) -> int:
    """A whole number of at least `least` from text or an int; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]+", value.strip()):
        number = int(value.strip())
    else:
        raise ValueError(value)
    if number < least:
        raise ValueError(value)
    return number


def _path(value: object) -> object:
    """A path from text (stripped) or a path object."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, os.PathLike):
        return value
    raise invalid(f"{_shown(value)} is not a path")


BEARER_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 2.1: b64token


def _secret_text(value: object) -> str:
    """A secret's stripped text; the error never shows the value."""
    if not isinstance(value, str):
        raise invalid("must be text")
    return value.strip()


def _web_url(value: object) -> object:
    """An http(s) base URL without its trailing slash."""
    if not isinstance(value, str):
        return value
    url = value.strip().rstrip("/")
    if not url.startswith(WEB_SCHEMES):
        raise invalid(f"{_shown(url)} is not a web address; it must start with https:// (or http://)")
    return url


def _file_url(value: object) -> object:
    """The http(s) URL of one file on a web server (a host and the file's path), stripped."""
    if not isinstance(value, str):
        return value
    url = value.strip()
    try:
        parts = urlsplit(url) if url.startswith(WEB_SCHEMES) and not any(ch.isspace() for ch in url) else None
    except ValueError:  # a malformed [IPv6] host
        parts = None
    if parts is None or not parts.hostname or parts.path.strip("/") == "":
        raise invalid(f"{_shown(url)} is not the web address of a sound file: write https:// (or http://), a host "
                       "and the file's path, e.g. https://cdn.example.jp/hold.wav")
    return url


_FilePath = Annotated[Path, BeforeValidator(_path)]
_SecretText = Annotated[str, BeforeValidator(_secret_text)]
_WebUrl = Annotated[str, BeforeValidator(_web_url)]
_FileUrl = Annotated[str, BeforeValidator(_file_url)]


class _FromEnvironment(BaseSettings):
    """Shared configuration: immutable, exact upper-case variable names, values from overrides then environment."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True, env_ignore_empty=True)

    @model_validator(mode="before")
    @classmethod
    def _unset_blanks(cls, data: Any) -> Any:
        """A blank value is no value: the field takes its default (or is missing, if it has none)."""
        if not isinstance(data, dict):
            return data
        return {key: value for key, value in data.items() if not _blank(value)}


class _Directories(_FromEnvironment):
    """The directories both the service and gunicorn's config file read."""

    metrics_dir: _FilePath | None = Field(None, validation_alias="PROMETHEUS_MULTIPROC_DIR")  # set: multiprocess
    runtime_dir: _FilePath | None = Field(None, validation_alias="IVR_RUNTIME_DIR")  # last good config for reloads


class Settings(_FromEnvironment):
    """What every command may read, no secret needed: file paths, display, the store."""

    menu_file: _FilePath = Field(DEFAULT_MENU, validation_alias="IVR_MENU_FILE")
    routing_file: _FilePath = Field(DEFAULT_ROUTING, validation_alias="IVR_ROUTING_FILE")
    partners_file: _FilePath | None = Field(None, validation_alias="IVR_PARTNERS_FILE")  # production contacts
    audio_dir: _FilePath = Field(DEFAULT_AUDIO, validation_alias="IVR_AUDIO_DIR")  # <dir>/<language>/<clip>.wav
    clock: Text | None = Field(None, validation_alias="IVR_CLOCK")  # the instant a rehearsal's clock starts at
    # unset: the embedded store; not in the repr, since the URL may carry a password
    redis_url: Text | None = Field(None, validation_alias="REDIS_URL", repr=False)
    xdg_state_home: _FilePath | None = Field(None, validation_alias="XDG_STATE_HOME", exclude=True,
                                           repr=False)  # only to place state_dir
    state_dir: _FilePath = Field(validation_alias="IVR_STATE_DIR")  # the embedded store's counts (no call data)
    call_ttl: int = Field(DEFAULT_CALL_TTL, validation_alias="IVR_CALL_TTL")
    log_level: LogLevel = Field("info", validation_alias="IVR_LOG_LEVEL")
    log_format: LogFormat = Field("auto", validation_alias="IVR_LOG_FORMAT")
    # optional here (`ivr call` signs with it when set); ServiceSettings.auth_token requires it
    twilio_token: _SecretText | None = Field(None, validation_alias="TWILIO_AUTH_TOKEN", repr=False)

    @model_validator(mode="before")
    @classmethod
    def _default_state_dir(cls, data: Any) -> Any:
        """IVR_STATE_DIR, else $XDG_STATE_HOME/ivr, else ~/.local/state/ivr."""
        if not isinstance(data, dict) or not _blank(data.get("IVR_STATE_DIR")):
            return data
        xdg = data.get("XDG_STATE_HOME")
        base = Path(str(xdg).strip()) if not _blank(xdg) else Path.home() / ".local" / "state"
        return {**data, "IVR_STATE_DIR": base / "ivr"}

    @field_validator("clock", mode="after")
    @classmethod
    def _instant(cls, value: str | None) -> str | None:
        """An ISO-8601 instant with its zone, kept as written."""
        if value is not None:
            try:
                parse_instant(value)
            except ValueError as e:
                raise invalid(str(e)) from None
        return value

    @field_validator("redis_url", mode="after")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        """A URL redis-py opens: redis://, rediss:// (TLS), unix:// (a socket) or redis+sentinel:// (the master)."""
        if value is not None and not value.lower().startswith(REDIS_SCHEMES):
            raise invalid(f"{_shown(value)} has an unknown scheme; use redis://, rediss://, unix:// or redis+sentinel://")
        try:
            sentinel_address(value or "")
        except ValueError as e:
            raise invalid(f"{_shown(value)}: {e}") from None
        return value

    @field_validator("call_ttl", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> int:
        """A whole number of seconds, at least MIN_CALL_TTL."""
        try:
            return _whole(value, MIN_CALL_TTL)
        except ValueError:
            raise invalid(f"{_shown(value)} must be a whole number of seconds, at least {MIN_CALL_TTL}") from None

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> str:
        """One of LogLevel, in any case."""
        return _choice(value, get_args(LogLevel), "a log level")

    @field_validator("log_format", mode="before")
    @classmethod
    def _format(cls, value: object) -> str:
        """One of LogFormat, in any case."""
        return _choice(value, get_args(LogFormat), "a log format")


def _choice(value: object, allowed: tuple[str, ...], what: str) -> str:
    """`value` lower-cased if it is one of `allowed`; otherwise an error listing them."""
    text = str(value).strip().lower()
    if text not in allowed:
        raise invalid(f"{_shown(value)} is not {what}; use {', '.join(allowed[:-1])} or {allowed[-1]}")
    return text


class ServiceSettings(Settings, _Directories, TwilioSide):
    """The web service, its webhooks and its RQ jobs: the Twilio auth token is required. The Twilio side's own
    settings (`ivr twilio`) are in TwilioSide (ivr/deployment.py)."""

    auth_token: _SecretText = Field(validation_alias="TWILIO_AUTH_TOKEN", repr=False)
    public_url: _WebUrl | None = Field(None, validation_alias="IVR_PUBLIC_URL")  # the base URL Twilio signs
    audio_url: _WebUrl | None = Field(None, validation_alias="IVR_AUDIO_URL")  # recordings from a CDN or bucket
    # the hold sound played between reassurance lines while callers wait; unset: <audio dir>/hold.wav, served by us
    hold_url: _FileUrl | None = Field(None, validation_alias="IVR_HOLD_URL")
    hold_seconds: int = Field(8, ge=2, le=60, validation_alias="IVR_HOLD_SECONDS")  # IVR_HOLD_URL's length
    hash_key: bytes = Field(validation_alias="IVR_HASH_KEY", repr=False)  # keys the caller hashes in logs
    # unset: the /admin/* endpoints answer 404
    admin_token: _SecretText | None = Field(None, validation_alias="IVR_ADMIN_TOKEN", repr=False)
    account_sid: Text | None = Field(None, validation_alias="TWILIO_ACCOUNT_SID")  # Twilio's REST API (SMS)
    # the REST API's base URL: unset, Twilio's own; a regional edge, or the tests' mock of Twilio's API description
    api_url: _WebUrl | None = Field(None, validation_alias="TWILIO_API_URL")
    sms_from: Text | None = Field(None, validation_alias="IVR_SMS_FROM")  # unset: SMS is not offered
    # referral SMS sent in one hour, in all (a bound on what forged caller IDs could cost); more wait for a later call
    sms_hourly_cap: int = Field(300, ge=1, validation_alias="IVR_SMS_HOURLY_CAP")
    caller_id: Text | None = Field(None, validation_alias="IVR_CALLER_ID")  # shown to partners we dial
    # our number -> label; NoDecode: the environment's comma format reaches _entries as text, never as JSON
    entries: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict, validation_alias="IVR_ENTRY_NUMBERS")
    gunicorn_master: int | None = Field(None, validation_alias="IVR_GUNICORN_MASTER")  # /admin/reload SIGHUPs it

    @model_validator(mode="before")
    @classmethod
    def _derive_hash_key(cls, data: Any) -> Any:
        """Without IVR_HASH_KEY, a key derived from the token, so hashes agree across workers and instances."""
        if not isinstance(data, dict) or not _blank(data.get("IVR_HASH_KEY")):
            return data
        token = data.get("TWILIO_AUTH_TOKEN")
        if not isinstance(token, str) or not token.strip():
            return data  # the token's own error says what is missing
        return {**data, "IVR_HASH_KEY": hmac.new(token.strip().encode(), HASH_KEY_CONTEXT, hashlib.sha256).digest()}

    @field_validator("admin_token", mode="after")
    @classmethod
    def _bearer_token(cls, value: str | None) -> str | None:
        """A token an `Authorization: Bearer` header can carry (RFC 6750's b64token), else /admin is unusable."""
        if value and not BEARER_TOKEN.fullmatch(value):
            raise invalid("must be a bearer token: letters, digits and - . _ ~ + / (then = only at the end), "
                           "e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
        return value or None

    @field_validator("hash_key", mode="before")
    @classmethod
    def _key_bytes(cls, value: object) -> bytes:
        """IVR_HASH_KEY's UTF-8 bytes, as written (not stripped: the key must stay the same bytes)."""
        if isinstance(value, bytes | str):
            return value if isinstance(value, bytes) else value.encode()
        raise invalid("must be text")

    @field_validator("entries", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        """'+81xxx=9999,+81yyy=0120' -> {'+81xxx': '9999', '+81yyy': '0120'}: how each of our numbers is reached."""
        if not isinstance(value, str):
            return value
        out = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            number, sep, label = part.partition("=")
            if not sep or not number.strip().startswith("+") or not label.strip().isalnum():
                raise invalid(f"{_shown(part)} should be +<our number>=<label>, e.g. +81120494949=0120")
            out[number.strip()] = label.strip()
        return out

    @field_validator("gunicorn_master", mode="before")
    @classmethod
    def _pid(cls, value: object) -> int | None:
        """A process id: a whole number of at least 1."""
        try:
            return None if value is None else _whole(value, 1)
        except ValueError:
            raise invalid(f"{_shown(value)} is not a process id (a whole number of at least 1)") from None


class ServerSettings(_Directories):
    """What gunicorn's config file needs: no token, since the master only forks workers."""

    bind: Text = Field(DEFAULT_BIND, validation_alias="IVR_BIND")
    web_concurrency: int = Field(default_factory=lambda: 2 * (os.cpu_count() or 1), validation_alias="WEB_CONCURRENCY")
    # unset: each worker would keep its own embedded store, so gunicorn runs one; not in the repr (a password)
    redis_url: Text | None = Field(None, validation_alias="REDIS_URL", repr=False)

    @field_validator("web_concurrency", mode="before")
    @classmethod
    def _workers(cls, value: object) -> int:
        """A whole number of worker processes, at least 1."""
        try:
            return _whole(value, 1)
        except ValueError:
            raise invalid(f"{_shown(value)} is not a whole number of at least 1") from None


_S = TypeVar("_S", bound=_FromEnvironment)


def _build(cls: type[_S], overrides: Mapping[str, Any] | None = None) -> _S:
    """An instance of `cls` from `overrides` then the environment; a one-line SettingsError if a value is wrong."""
    given = dict(overrides or {})
    try:
        return cls(**given)  # keyword arguments come before the environment; names no field reads are ignored
    except ValidationError as e:
        first = e.errors(include_url=False, include_input=False)[0]
        secrets = [value.strip() for value in (*map(given.get, SECRETS), *map(os.environ.get, SECRETS))
                   if isinstance(value, str) and value.strip()]
        raise _error(first, secrets) from None


def _error(error: ErrorDetails, secrets: list[str]) -> SettingsError:
    """One line from pydantic's first error: the variable (pydantic's loc is the alias), then what is wrong."""
    variable = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "missing":
        message = _MISSING.get(variable, f"{variable} is not set")
    else:
        message = f"{variable}: {error['msg']}" if variable else error["msg"]
    for secret in secrets:
        if len(secret) >= _SCRUB_MIN:
            message = message.replace(secret, "***")
    return SettingsError(" ".join(message.splitlines()), variable or None)


def load_settings(overrides: Mapping[str, Any] | None = None) -> ServiceSettings:
    """The web service's settings: `overrides` (variable name -> value) win over the environment."""
    return _build(ServiceSettings, overrides)


def load_file_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings of a command that reads files only: no token needed."""
    return _build(Settings, overrides)


def load_server_settings() -> ServerSettings:
    """gunicorn's settings (ivr/gunicorn_conf.py), from the environment."""
    return _build(ServerSettings)


def child_environment(**extra: str) -> dict[str, str]:
    """A copy of this process's environment plus `extra`, for a child process (ivr serve execs gunicorn with it)."""
    return {**os.environ, **extra}


def configured_token() -> str | None:
    """TWILIO_AUTH_TOKEN when it is set, else None: `ivr call` signs with it, or with a token of its own in-process."""
    return load_file_settings().twilio_token
