"""What surrounds the service in a deployment: where Redis is (one address, or a Sentinel group naming the master) and
the Twilio side (our numbers, queues and fallback document), read by ivr/settings.py.

`TwilioSide` holds the settings of `ivr twilio plan|apply|check` and of the REST client's key; it is one of the bases
of `ServiceSettings` and reads nothing itself (ivr/settings.py reads the environment). `sentinel_address` is the one
reader of a `redis+sentinel://` URL: the settings check it at boot, the store and the RQ worker connect with it.
`masked_url` is how a settings error shows a URL that may carry a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote, urlsplit

from pydantic import BeforeValidator, Field, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

SENTINEL_SCHEME = "redis+sentinel://"
SENTINEL_PORT = 26379  # Redis Sentinel's own port, when a host is written without one
DEFAULT_QUEUE_MAX_SIZE = 1000  # callers a Twilio queue holds; the next hears queue-full (Twilio's default: 100)
MAX_QUEUE_MAX_SIZE = 5000  # the largest max_size Twilio accepts
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
SENTINEL_FORM = "redis+sentinel://[:password@]host:port[,host:port...]/SERVICE[/db]"


@dataclass(frozen=True)
class SentinelAddress:
    """A Redis master found through Sentinel: the sentinels, the service (master) name, the database and the
    credentials of the Redis servers (the sentinels themselves are asked without a password)."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def masked_url(text: str) -> str:
    """`text` safe to show when it may be a URL with a password: everything from the scheme to the last `@` becomes
    `***@`, and a URL's query or fragment (redis-py reads `?password=`) `?***`. When an `@` follows a `?` or `#`,
    which of them ends the credentials cannot be told, so all after the scheme is masked."""
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/{0,2}", text)
    head, rest = (text[:scheme.end()], text[scheme.end():]) if scheme else ("", text)
    at = rest.rfind("@")
    options = [i for i in (rest.find("?"), rest.find("#")) if i >= 0] if scheme else []
    if at >= 0 and options and min(options) < at:
        return head + "***"
    if at >= 0:
        rest = "***" + rest[at:]
    cut = [i for i in (rest.find("?"), rest.find("#")) if i >= 0] if scheme else []
    return head + (rest[:min(cut) + 1] + "***" if cut else rest)


def _sentinel(text: str) -> tuple[str, int]:
    """(host, port) of one sentinel, read as urllib reads a URL's host ('host:port', '[v6]:port', or a bare host on
    Sentinel's port); ValueError when it is not one."""
    try:
        parts = urlsplit("//" + text)
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number or out of range, a malformed [v6]
        host = port = None
    if not host or parts.username is not None or port == 0:
        raise ValueError(text)
    return host, port or SENTINEL_PORT


def sentinel_address(url: str) -> SentinelAddress | None:
    """The Sentinel group a `redis+sentinel://` URL names; None for any other URL. ValueError (its message says what
    is allowed, never the password) when the URL is not of the form SENTINEL_FORM. Credentials are read as redis-py
    reads a redis:// URL's: `user:password@`, `user@` (a user name alone) or `:password@` (a password alone)."""
    if not url.lower().startswith(SENTINEL_SCHEME):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed [v6] host
        raise ValueError(f"the sentinels must be host:port, comma-separated; write {SENTINEL_FORM}") from None
    encode = "a password's / ? # and @ must be percent-encoded (%2F %3F %23 %40); " \
        if "@" in parts.path + parts.query + parts.fragment else ""
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ValueError(f"options after ? or # are not read here; {encode}write {SENTINEL_FORM}")
    if encode:
        raise ValueError(f"{encode}write {SENTINEL_FORM}")
    hosts = parts.netloc.rpartition("@")[2]
    try:
        sentinels = tuple(_sentinel(h.strip()) for h in hosts.split(","))
    except ValueError:
        raise ValueError(f"the sentinels must be host:port, comma-separated; write {SENTINEL_FORM}") from None
    path = parts.path.removeprefix("/")
    segments = (path[:-1] if path.endswith("/") else path).split("/")  # one trailing slash is allowed
    if not segments[0] or len(segments) > 2 or (len(segments) == 2 and not re.fullmatch(r"[0-9]+", segments[1])):
        raise ValueError(f"the service name (and a database number) must follow the sentinels; write {SENTINEL_FORM}")
    return SentinelAddress(sentinels, unquote(segments[0]), int(segments[1]) if len(segments) == 2 else 0,
                           unquote(parts.username) if parts.username else None,
                           unquote(parts.password) if parts.password else None)


def invalid(message: str) -> PydanticCustomError:
    """A settings validation error whose message is exactly `message` (ivr/settings.py prefixes the variable's
    name); for the settings here and in ivr/settings.py."""
    return PydanticCustomError("ivr_setting", "{message}", {"message": message})


def stripped(value: object) -> object:
    """Text without surrounding whitespace; anything else as it is."""
    return value.strip() if isinstance(value, str) else value


Text = Annotated[str, BeforeValidator(stripped)]


class TwilioSide(BaseSettings):
    """The Twilio side as code (`ivr twilio`): the counsellors' number, the fallback document's address, the queues'
    size, and an API key for the REST client instead of the auth token."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True, env_ignore_empty=True)

    # the static fallback document (`ivr fallback export`, hosted elsewhere); unset: this service's /voice/fallback
    fallback_url: Text | None = Field(None, validation_alias="IVR_FALLBACK_URL")
    queue_max_size: int = Field(DEFAULT_QUEUE_MAX_SIZE, ge=1, le=MAX_QUEUE_MAX_SIZE,
                                validation_alias="IVR_QUEUE_MAX_SIZE")
    counsellor_number: Text | None = Field(None, validation_alias="IVR_COUNSELLOR_NUMBER")  # posts /counselor/...
    api_key: Text | None = Field(None, validation_alias="TWILIO_API_KEY")  # SK...: with TWILIO_API_SECRET
    api_secret: Text | None = Field(None, validation_alias="TWILIO_API_SECRET", repr=False)

    @field_validator("fallback_url", mode="after")
    @classmethod
    def _fallback_url(cls, value: str | None) -> str | None:
        """An https URL (Twilio fetches the document from another provider)."""
        if value is not None and not re.fullmatch(r"https://[^\s/]+(/\S*)?", value):
            raise invalid("is not an https address; write where the exported document is served, e.g. "
                           "https://handler.twilio.com/twiml/EH...")
        return value

    @field_validator("counsellor_number", mode="after")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        """An E.164 number, as Twilio lists it."""
        if value is not None and not E164.fullmatch(value):
            raise invalid("is not a number in E.164 form; write e.g. +81300000000")
        return value

    @field_validator("api_key", mode="after")
    @classmethod
    def _key_sid(cls, value: str | None) -> str | None:
        """An API key's SID: SK and 32 hex digits."""
        if value is not None and not re.fullmatch(r"SK[0-9a-fA-F]{32}", value):
            raise invalid("is not an API key SID (SK and 32 hex digits)")
        return value
