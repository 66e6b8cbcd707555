"""Settings: one source, typed, and every wrong value stops the command with one line naming the variable."""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from pydantic import ValidationError

from ivr.settings import (
    DEFAULT_AUDIO,
    ServerSettings,
    ServiceSettings,
    SettingsError,
    child_environment,
    configured_token,
    load_file_settings,
    load_server_settings,
    load_settings,
)
from menus.menu import DEFAULT_FILE as DEFAULT_MENU
from routing.decide import DEFAULT_FILE as DEFAULT_ROUTING

TOKEN = "tok"
SERVICE = {"TWILIO_AUTH_TOKEN": TOKEN}
MISSING_TOKEN = ("TWILIO_AUTH_TOKEN is not set: without it no Twilio request can be verified "
                 "(set it to the account's auth token)")

# (variable, wrong value, the whole message); the service loader is given a token, so only the value is at fault.
WRONG = [
    ("IVR_CLOCK", "2025-13-01",
     "IVR_CLOCK: '2025-13-01' is not an ISO-8601 instant; write e.g. 2025-05-03T03:00:00+09:00"),
    ("IVR_CLOCK", "2025-05-03T03:00:00",
     "IVR_CLOCK: '2025-05-03T03:00:00' has no zone; write it with one, e.g. 2025-05-03T03:00:00+09:00 for JST"),
    ("REDIS_URL", "http://x",
     "REDIS_URL: 'http://x' has an unknown scheme; use redis://, rediss://, unix:// or redis+sentinel://"),
    ("IVR_CALL_TTL", "x", "IVR_CALL_TTL: 'x' must be a whole number of seconds, at least 60"),
    ("IVR_CALL_TTL", "30", "IVR_CALL_TTL: '30' must be a whole number of seconds, at least 60"),
    ("IVR_CALL_TTL", "90.5", "IVR_CALL_TTL: '90.5' must be a whole number of seconds, at least 60"),
    ("IVR_CALL_TTL", "-600", "IVR_CALL_TTL: '-600' must be a whole number of seconds, at least 60"),
    ("IVR_LOG_LEVEL", "verbose", "IVR_LOG_LEVEL: 'verbose' is not a log level; use debug, info, warning or error"),
    ("IVR_LOG_FORMAT", "xml", "IVR_LOG_FORMAT: 'xml' is not a log format; use auto, json or console"),
]
WRONG_SERVICE = [
    ("IVR_PUBLIC_URL", "hotline.example.jp",
     "IVR_PUBLIC_URL: 'hotline.example.jp' is not a web address; it must start with https:// (or http://)"),
    ("IVR_AUDIO_URL", "ftp://cdn.example.jp/",
     "IVR_AUDIO_URL: 'ftp://cdn.example.jp' is not a web address; it must start with https:// (or http://)"),
    ("IVR_ENTRY_NUMBERS", "+81120494949=0120,815012349999=9999",
     "IVR_ENTRY_NUMBERS: '815012349999=9999' should be +<our number>=<label>, e.g. +81120494949=0120"),
    ("IVR_ENTRY_NUMBERS", '{"+81120494949": "0120"}',
     """IVR_ENTRY_NUMBERS: '{"+81120494949": "0120"}' should be +<our number>=<label>, e.g. +81120494949=0120"""),
    ("IVR_GUNICORN_MASTER", "abc", "IVR_GUNICORN_MASTER: 'abc' is not a process id (a whole number of at least 1)"),
]
WRONG_SERVER = [
    ("WEB_CONCURRENCY", "abc", "WEB_CONCURRENCY: 'abc' is not a whole number of at least 1"),
    ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY: '0' is not a whole number of at least 1"),
]


Env = Callable[[Mapping[str, str]], None]
READ = {str(f.validation_alias) for cls in (ServiceSettings, ServerSettings) for f in cls.model_fields.values()}


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> Env:
    """Unsets every variable the settings read, so the developer's shell cannot leak in; returns a setter for the test."""
    for name in [n for n in os.environ if n.startswith(("IVR_", "TWILIO_")) or n in READ]:
        monkeypatch.delenv(name)

    def setenv(values: Mapping[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return setenv


def _error(load: Callable[..., object], overrides: dict[str, object] | None = None) -> SettingsError:
    """The SettingsError `load` raises for the environment the test set and these overrides."""
    with pytest.raises(SettingsError) as caught:
        load(**({"overrides": overrides} if overrides is not None else {}))
    return caught.value


@pytest.mark.parametrize(("variable", "value", "message"), WRONG)
def test_wrong_value_for_any_command_is_one_line_naming_the_variable(variable: str, value: str, message: str,
                                                                     env: Env) -> None:
    """A typo in a shared setting would stop a file-only command with a pydantic dump instead of one clear line."""
    env({variable: value})
    error = _error(load_file_settings)
    assert (message, variable) == (str(error), error.variable)


@pytest.mark.parametrize(("variable", "value", "message"), WRONG + WRONG_SERVICE)
def test_wrong_value_stops_the_service_with_one_line_naming_the_variable(variable: str, value: str,
                                                                         message: str, env: Env) -> None:
    """The service would boot on a wrong value, or stop with a pydantic dump that does not say which variable."""
    env({**SERVICE, variable: value})
    error = _error(load_settings)
    assert (message, variable) == (str(error), error.variable)


@pytest.mark.parametrize(("variable", "value", "message"), WRONG_SERVER)
def test_wrong_server_value_stops_gunicorn_with_one_line_naming_the_variable(variable: str, value: str,
                                                                             message: str, env: Env) -> None:
    """gunicorn would start with a ValueError traceback from its config file instead of naming WEB_CONCURRENCY."""
    env({variable: value})
    error = _error(load_server_settings)
    assert (message, variable) == (str(error), error.variable)


def test_error_carries_no_pydantic_traceback(env: Env) -> None:
    """The operator would see pydantic's multi-line error chained under the settings error."""
    env({**SERVICE, "REDIS_URL": "http://x"})
    error = _error(load_settings)
    assert (None, True) == (error.__cause__, error.__suppress_context__)


def test_wrong_typed_override_is_one_line() -> None:
    """A test or caller passing a number for a path would get a pydantic dump instead of a line naming the variable."""
    error = _error(load_file_settings, {"IVR_MENU_FILE": 3})
    assert "IVR_MENU_FILE: '3' is not a path" == str(error)


@pytest.mark.parametrize("environ", [{}, {"TWILIO_AUTH_TOKEN": ""}, {"TWILIO_AUTH_TOKEN": "  "}])
def test_service_without_token_does_not_start(environ: dict[str, str], env: Env) -> None:
    """Without the token every Twilio webhook would be refused with a 403 instead of the boot stopping."""
    env(environ)
    error = _error(load_settings)
    assert (MISSING_TOKEN, "TWILIO_AUTH_TOKEN") == (str(error), error.variable)


def test_file_commands_need_no_token(env: Env) -> None:
    """`ivr config check`, `ivr route` and friends would demand a made-up Twilio token."""
    env({"IVR_MENU_FILE": "/etc/ivr/menu.yaml"})
    settings = load_file_settings()
    assert (Path("/etc/ivr/menu.yaml"), None) == (settings.menu_file, settings.twilio_token)


def test_server_settings_need_no_token(env: Env) -> None:
    """gunicorn's master, which only forks workers, would refuse to start without the Twilio token."""
    env({"IVR_BIND": "0.0.0.0:8080", "WEB_CONCURRENCY": "3"})
    settings = load_server_settings()
    assert ("0.0.0.0:8080", 3) == (settings.bind, settings.web_concurrency)


def test_defaults(env: Env) -> None:
    """With nothing set, the service would not find the menu, the routing or the recordings shipped with it."""
    env({**SERVICE, "XDG_STATE_HOME": "/var/lib/state"})
    settings = load_settings()
    expected: dict[str, object] = {
        "menu_file": DEFAULT_MENU, "routing_file": DEFAULT_ROUTING, "partners_file": None, "audio_dir": DEFAULT_AUDIO,
        "clock": None, "redis_url": None, "state_dir": Path("/var/lib/state/ivr"), "call_ttl": 21600,
        "log_level": "info", "log_format": "auto", "public_url": None, "audio_url": None, "admin_token": None,
        "runtime_dir": None, "account_sid": None, "sms_from": None, "caller_id": None, "entries": {},
        "metrics_dir": None, "gunicorn_master": None}
    assert expected == {name: getattr(settings, name) for name in expected}
    assert Path("menus/menu.yaml") == settings.menu_file.relative_to(settings.menu_file.parents[1])
    assert Path("menus/audio") == settings.audio_dir.relative_to(settings.audio_dir.parents[1])


def test_state_dir_without_xdg_is_under_home() -> None:
    """The embedded store's counts would be written somewhere unexpected, or lost between runs."""
    assert Path.home() / ".local" / "state" / "ivr" == load_file_settings().state_dir


def test_server_defaults() -> None:
    """`ivr serve` would bind to a public interface, or run a single worker, without being asked to."""
    settings = load_server_settings()
    expected = ("127.0.0.1:8000", 2 * (os.cpu_count() or 1), None, None)
    assert expected == (settings.bind, settings.web_concurrency, settings.metrics_dir, settings.runtime_dir)


def test_directories_are_read_alike_by_service_and_gunicorn(env: Env) -> None:
    """gunicorn's master and its workers would disagree on where multiprocess metrics or the last good config live."""
    env({**SERVICE, "PROMETHEUS_MULTIPROC_DIR": " /run/ivr/metrics ", "IVR_RUNTIME_DIR": "/run/ivr/runtime"})
    service, server = load_settings(), load_server_settings()
    expected = (Path("/run/ivr/metrics"), Path("/run/ivr/runtime"))
    assert (expected, expected) == ((service.metrics_dir, service.runtime_dir), (server.metrics_dir, server.runtime_dir))


def test_overrides_beat_environ(env: Env) -> None:
    """A test's or `ivr call`'s own values would lose to whatever the shell happens to export."""
    env({**SERVICE, "REDIS_URL": "redis://shell:6379/0", "IVR_CALL_TTL": "600", "IVR_MENU_FILE": "/shell.yaml"})
    overrides = {"REDIS_URL": "redis://test:6379/1", "IVR_CALL_TTL": 120, "IVR_MENU_FILE": Path("/test.yaml"),
                 "CLOCK": object()}
    settings = load_settings(overrides)
    assert ("redis://test:6379/1", 120, Path("/test.yaml")) == (settings.redis_url, settings.call_ttl,
                                                                 settings.menu_file)


def test_blank_means_unset(env: Env) -> None:
    """An empty `REDIS_URL=` in an env file would be taken as a URL, or an empty path as the menu file."""
    env({**SERVICE, "REDIS_URL": "  ", "IVR_MENU_FILE": "", "IVR_PARTNERS_FILE": " ", "IVR_CALL_TTL": "",
         "IVR_ENTRY_NUMBERS": "", "IVR_GUNICORN_MASTER": " "})
    settings = load_settings()
    assert (None, DEFAULT_MENU, None, 21600, {}, None) == (settings.redis_url, settings.menu_file,
                                                           settings.partners_file, settings.call_ttl, settings.entries,
                                                           settings.gunicorn_master)


def test_blank_override_unsets_the_environment_value(env: Env) -> None:
    """A test asking for the embedded store would quietly get the Redis the shell exports."""
    env({"REDIS_URL": "redis://shell:6379/0"})
    assert load_file_settings({"REDIS_URL": ""}).redis_url is None


@pytest.mark.parametrize("url", ["redis://localhost:6379/0", "rediss://cache.example.jp:6380", "unix:///run/r.sock"])
def test_redis_schemes_accepted(url: str, env: Env) -> None:
    """A TLS or socket Redis would be refused at boot."""
    env({"REDIS_URL": f" {url} "})
    assert url == load_file_settings().redis_url


def test_values_are_normalised(env: Env) -> None:
    """A trailing slash would break the signature check's URL; an upper-case level or stray space would be refused."""
    env({**SERVICE, "IVR_PUBLIC_URL": "https://hotline.example.jp/ ", "IVR_AUDIO_URL": "https://cdn.example.jp/audio/",
         "IVR_LOG_LEVEL": " DEBUG", "IVR_LOG_FORMAT": "JSON", "IVR_CLOCK": " 2025-05-03T03:00:00+09:00 ",
         "IVR_CALL_TTL": "60", "IVR_GUNICORN_MASTER": "4242"})
    settings = load_settings()
    assert ("https://hotline.example.jp", "https://cdn.example.jp/audio", "debug", "json",
            "2025-05-03T03:00:00+09:00", 60, 4242) == (
        settings.public_url, settings.audio_url, settings.log_level, settings.log_format, settings.clock,
        settings.call_ttl, settings.gunicorn_master)


def test_entry_numbers_parse_the_comma_format(env: Env) -> None:
    """Calls to the 0120 number would be counted as calls to #9999, or the service would not start."""
    env({**SERVICE, "IVR_ENTRY_NUMBERS": " +81120494949=0120, +815012349999 = 9999,"})
    assert {"+81120494949": "0120", "+815012349999": "9999"} == load_settings().entries


def test_hash_key_derived_from_token(env: Env) -> None:
    """Caller hashes would differ between workers or change meaning after an upgrade, breaking repeat-caller counts."""
    env({"TWILIO_AUTH_TOKEN": " tok "})
    expected = hmac.new(b"tok", b"ivr call hash", hashlib.sha256).digest()
    assert expected == load_settings().hash_key


def test_hash_key_from_its_variable(env: Env) -> None:
    """A dedicated IVR_HASH_KEY would be ignored, so rotating the auth token would change every caller hash."""
    env({**SERVICE, "IVR_HASH_KEY": "clé"})
    assert "clé".encode() == load_settings().hash_key


@pytest.mark.parametrize(("environ", "expected"), [({"TWILIO_AUTH_TOKEN": " tok "}, "tok"),
                                                   ({"TWILIO_AUTH_TOKEN": "  "}, None), ({}, None)])
def test_configured_token(environ: dict[str, str], expected: str | None, env: Env) -> None:
    """`ivr call` would sign with a blank token, or miss the one the shell exports and make one up."""
    env(environ)
    assert expected == configured_token()


@pytest.mark.parametrize(("variable", "holder"), [("TWILIO_AUTH_TOKEN", "REDIS_URL"), ("IVR_ADMIN_TOKEN", "IVR_CLOCK"),
                                                  ("IVR_HASH_KEY", "IVR_PUBLIC_URL")])
def test_secret_pasted_into_another_variable_is_not_echoed(variable: str, holder: str, env: Env) -> None:
    """A secret pasted into the wrong variable would be printed to the terminal and the boot log."""
    secret = "s3cr3t-0123456789abcdef"
    env({**SERVICE, variable: secret, holder: secret})
    error = _error(load_settings)
    assert (holder, False) == (error.variable, secret in str(error))


@pytest.mark.parametrize("variable", ["TWILIO_AUTH_TOKEN", "IVR_ADMIN_TOKEN", "IVR_HASH_KEY"])
def test_wrong_secret_is_not_echoed(variable: str, env: Env) -> None:
    """A secret of the wrong type would be printed in the error that names it."""
    env(SERVICE)
    error = _error(load_settings, {variable: 987654321})
    assert (f"{variable}: must be text", "987654321" in str(error)) == (str(error), False)


def test_password_in_redis_url_is_not_echoed(env: Env) -> None:
    """The Redis password would be printed with the scheme error."""
    env({"REDIS_URL": "http://:hunter2@cache:6379"})
    error = _error(load_file_settings)
    assert ("REDIS_URL: 'http://***@cache:6379' has an unknown scheme; use redis://, rediss://, unix:// or "
            "redis+sentinel://") == str(error)


def test_secrets_not_in_repr(env: Env) -> None:
    """Logging the settings object would write the auth token, hash key, admin token or Redis password to the logs."""
    env({"TWILIO_AUTH_TOKEN": "tok-0123456789", "IVR_ADMIN_TOKEN": "adm-0123456789", "IVR_HASH_KEY": "key-0123456789",
         "REDIS_URL": "redis://:pw-0123456789@cache.example.jp:6379/0"})
    shown = repr(load_settings())
    assert [] == [secret for secret in ("tok-0123456789", "adm-0123456789", "key-0123456789", "pw-0123456789")
                  if secret in shown]


def test_settings_are_frozen() -> None:
    """Code changing a setting at run time would change it for every later call in the worker."""
    settings = load_file_settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.call_ttl = 60


def test_child_environment_adds_to_a_copy() -> None:
    """gunicorn would start without the shell's variables, or with IVR_BIND left as the shell had it."""
    child = child_environment(IVR_BIND="127.0.0.1:9000")
    assert (dict, "127.0.0.1:9000", os.environ.get("PATH")) == (type(child), child["IVR_BIND"], child.get("PATH"))


@pytest.mark.parametrize(("variable", "value", "command"), [
    ("IVR_CLOCK", "2025-13-01", ["route"]),
    ("REDIS_URL", "http://x", ["report", "--campaign", "gw-2025"]),
    ("WEB_CONCURRENCY", "abc", ["serve", "--port", "1"]),
    ("IVR_CLOCK", "tomorrow", ["serve", "--port", "1"]),
])
def test_a_wrong_setting_stops_the_command_with_one_line(variable: str, value: str, command: list[str],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """An operator who mistypes a setting gets one line naming it and exit 2, never a traceback or a start."""
    from ivr.cli import main

    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv(variable, value)
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{variable}: '{value}'" in err, err


def test_every_setting_is_in_the_readme_table() -> None:
    """A newcomer finds every environment variable the service reads in the README's settings table."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    internal = {"IVR_GUNICORN_MASTER", "XDG_STATE_HOME"}  # set by gunicorn_conf; the standard XDG base directory
    missing = sorted(n for n in READ - internal if not any(f"`{n}`" in row for row in rows))
    assert missing == []


@pytest.mark.parametrize("token", ["has space", "semi;colon", "=start", "qu\"ote"])
def test_admin_token_a_bearer_header_cannot_carry_is_refused(token: str, env: Env) -> None:
    """An admin token with a character a Bearer header cannot carry would make /admin unusable during a campaign."""
    env({**SERVICE, "IVR_ADMIN_TOKEN": token})
    error = _error(load_settings)
    assert (error.variable, token in str(error)) == ("IVR_ADMIN_TOKEN", False)
    assert str(error).startswith("IVR_ADMIN_TOKEN: must be a bearer token")
