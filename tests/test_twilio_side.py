"""The Twilio side as code (`ivr twilio plan|apply|check`), against Prism serving Twilio's own API description: every
request it sends is one Twilio's description allows, and what it changes is what the config and settings call for.

Prism answers with the description's examples: the account holds one number, +18089255327 (PNaaa...), with no voice
URL, and one queue whose name is none of ours, of max_size 100."""

from __future__ import annotations

import urllib.parse

import pytest

from ivr.cli import main
from ivr.settings import load_settings
from ivr.state.config import load
from ivr.state.jobs import twilio_client
from ivr.tools.twilio_side import Held, plan, wanted
from tests.twilio_api import ACCOUNT, TwilioApi

NUMBER = "+18089255327"  # the description's example number, so Prism lists it as in the account
NUMBER_SID = "PN" + "a" * 32
PUBLIC = "https://ivr.example.org"
BASE = f"/2010-04-01/Accounts/{ACCOUNT}"


@pytest.fixture
def side(twilio_api: TwilioApi, monkeypatch: pytest.MonkeyPatch) -> TwilioApi:
    """The settings `ivr twilio` reads, pointed at the mock; the mock's log read from here on."""
    for name, value in {"TWILIO_AUTH_TOKEN": "test-auth-token-0123456789abcdef", "TWILIO_ACCOUNT_SID": ACCOUNT,
                        "TWILIO_API_URL": twilio_api.url, "IVR_PUBLIC_URL": PUBLIC,
                        "IVR_ENTRY_NUMBERS": f"{NUMBER}=0120"}.items():
        monkeypatch.setenv(name, value)
    twilio_api.mark()
    return twilio_api


def our_queues() -> list[str]:
    settings = load_settings()
    routing = load(settings.menu_file, settings.routing_file, settings.partners_file).routing
    return sorted(q for pid in routing.partners for q in routing.queues_of(pid))


def test_plan_shows_a_number_whose_voice_url_is_not_ours(side: TwilioApi, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator sees that the number would not reach us, and every queue that is missing, before any change."""
    assert main(["twilio", "plan"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"number {NUMBER}: voice_url: None -> '{PUBLIC}/voice/incoming'" in out
    assert f"number {NUMBER}: voice_fallback_url: None -> '{PUBLIC}/voice/fallback'" in out
    assert f"number {NUMBER}: status_callback: None -> '{PUBLIC}/voice/status'" in out
    assert [line for line in out if line.startswith("queue ")] == [
        f"queue {q}: missing -> create with max_size 1000" for q in our_queues()]
    assert {method for method, _ in side.requests()} == {"GET"}  # plan changes nothing
    assert side.violations() == []


def test_check_exits_non_zero_on_a_difference(side: TwilioApi) -> None:
    """Run before a campaign opens, the check fails while the number's webhooks are not ours."""
    assert main(["twilio", "check"]) == 1
    assert side.violations() == []


def test_apply_sends_valid_updates_for_the_number_and_creates_the_queues(side: TwilioApi,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Apply sets the number's voice URL, fallback and status callback in one request and creates each queue large
    enough; Twilio's description allows every request."""
    assert main(["twilio", "apply"]) == 0
    posts = [urllib.parse.urlsplit(path).path for method, path in side.requests() if method == "POST"]
    assert posts == [f"{BASE}/Queues.json"] * len(our_queues()) + [f"{BASE}/IncomingPhoneNumbers/{NUMBER_SID}.json"]
    assert side.violations() == []
    assert f"done: number {NUMBER} (0120): status_callback, status_callback_method, voice_fallback_method, " \
           "voice_fallback_url, voice_method, voice_url" in capsys.readouterr().out


def test_apply_with_a_fallback_document_sets_it_as_the_numbers_fallback(side: TwilioApi, monkeypatch: pytest.MonkeyPatch,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """With IVR_FALLBACK_URL the number falls back to the static document elsewhere, fetched with GET."""
    monkeypatch.setenv("IVR_FALLBACK_URL", "https://handler.twilio.com/twiml/EH" + "0" * 32)
    assert main(["twilio", "plan"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"number {NUMBER}: voice_fallback_url: None -> 'https://handler.twilio.com/twiml/EH{'0' * 32}'" in out
    assert f"number {NUMBER}: voice_fallback_method: 'POST' -> 'GET'" in out
    assert side.violations() == []


def test_a_number_missing_from_the_account_is_reported_and_apply_fails(side: TwilioApi, monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A number not in the account cannot be fixed by apply: the operator is told, and the exit status says so."""
    monkeypatch.setenv("IVR_COUNSELLOR_NUMBER", "+81300000000")
    assert main(["twilio", "apply"]) == 1
    assert "number +81300000000: not in this account (buy or port it, then apply again)" in capsys.readouterr().out
    assert side.violations() == []


def test_apply_is_idempotent_a_side_already_as_wanted_gets_no_change(side: TwilioApi,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Run on a Twilio side that already matches (larger queues included), apply has nothing to send."""
    monkeypatch.setenv("IVR_COUNSELLOR_NUMBER", "+81300000000")
    settings = load_settings()
    want = wanted(settings, load(settings.menu_file, settings.routing_file, settings.partners_file))
    assert want.numbers["+81300000000"] == {"voice_url": f"{PUBLIC}/counselor/incoming", "voice_method": "POST"}
    held = Held({n: {"sid": "PN" + "1" * 32, **fields} for n, fields in want.numbers.items()},
                {q: {"sid": "QU" + "1" * 32, "max_size": 2000} for q in want.queues})
    assert plan(want, held) == []
    smaller = Held(held.numbers, {**held.queues, our_queues()[0]: {"sid": "QU" + "2" * 32, "max_size": 100}})
    assert [str(c) for c in plan(want, smaller)] == [f"queue {our_queues()[0]}: max_size: 100 -> 1000"]


def test_an_api_key_is_used_instead_of_the_auth_token(side: TwilioApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """With TWILIO_API_KEY and TWILIO_API_SECRET the REST client signs in with the key, for the same account."""
    monkeypatch.setenv("TWILIO_API_KEY", "SK" + "b" * 32)
    monkeypatch.setenv("TWILIO_API_SECRET", "key-secret")
    client = twilio_client(load_settings())
    assert (client.username, client.password, client.account_sid) == ("SK" + "b" * 32, "key-secret", ACCOUNT)
    assert client.queues.list(limit=1)[0].sid.startswith("QU")
    assert side.violations() == []
