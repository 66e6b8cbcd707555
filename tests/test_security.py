"""Who may call what: every Twilio webhook refuses what Twilio did not sign, admin endpoints refuse all but the token,
and every secret is compared in constant time. Endpoints are read from the app's URL map, so a new one is covered."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import pytest
import redis
from twilio.request_validator import RequestValidator

from ivr.tools.standin import InProcess
from tests.support import BASE, CALLER, AppFactory, post_signed, signed

OPEN = "2025-05-03T03:00:00+09:00"
ADMIN = "admin-token-for-security-tests"
SIGNED = ("/voice/", "/counselor/")
# and /metrics, mounted beside the app; recorded prompts and the hold sound are fetched by Twilio's media fetcher,
# which does not sign
PUBLIC = {"/healthz", "/readyz", "/static/<path:filename>", "/audio/<lang>/<name>", "/audio/hold.wav"}
KNOWN = {"/voice/incoming", "/voice/menu", "/voice/language", "/voice/referrals", "/voice/wait", "/voice/queue-done",
         "/voice/dial-done", "/voice/status", "/voice/fallback", "/counselor/incoming", "/counselor/id",
         "/counselor/pin", "/counselor/connecting", "/counselor/after", "/counselor/next"}
FORM = "application/x-www-form-urlencoded"
COUNSELLOR = "+15005550010"  # ops/partners.example.yaml: counsellor 1001's phone, PIN 482193


@pytest.fixture
def app(make_app: AppFactory) -> Any:
    from pathlib import Path

    partners = Path(__file__).parents[1] / "ops" / "partners.example.yaml"
    return make_app(OPEN, IVR_ADMIN_TOKEN=ADMIN, IVR_PARTNERS_FILE=str(partners))


def endpoints(app: Any, prefixes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(path, method) for every rule of the URL map under these prefixes, every method it answers."""
    return [(r.rule, m) for r in app.url_map.iter_rules() if r.rule.startswith(prefixes) for m in sorted(r.methods)]


def test_every_endpoint_is_either_signed_admin_or_public(app: Any) -> None:
    """A new endpoint outside /voice/, /counselor/ and /admin/ must be added to the public list knowingly."""
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert KNOWN <= {r for r in rules if r.startswith(SIGNED)}
    assert {r for r in rules if not r.startswith((*SIGNED, "/admin/"))} == PUBLIC
    assert "/admin/reload" in rules


def test_every_webhook_refuses_what_twilio_did_not_sign(app: Any, redis_url: str) -> None:
    """Unsigned, forged, signed with another account's token, or signed for other parameters: 403 on every
    /voice/ and /counselor/ endpoint and method (and paths that do not exist), no TwiML, nothing stored."""
    params = {"CallSid": "CA" + "5" * 32, "From": COUNSELLOR, "To": "+81120494949", "Digits": "482193"}
    client = app.test_client()
    paths = [*endpoints(app, SIGNED), ("/voice/no-such-step", "POST"), ("/counselor/no-such-step", "POST")]
    assert len(paths) >= 4 * len(KNOWN)
    for path, method in paths:
        url = BASE + path
        tries = {"unsigned": {}, "forged": {"X-Twilio-Signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8="},
                 "other token": {"X-Twilio-Signature": RequestValidator("another-accounts-token").compute_signature(
                     url, params)},
                 "other params": {"X-Twilio-Signature": signed(url, {**params, "Digits": "1"})}}
        for how, headers in tries.items():
            resp = client.open(path, method=method, data=params, base_url=BASE, headers=headers)
            assert resp.status_code == 403, (path, method, how)
            assert b"<Response" not in resp.get_data() and b"482193" not in resp.get_data(), (path, method, how)
    assert redis.Redis.from_url(redis_url).dbsize() == 0


def test_admin_endpoints_refuse_all_but_the_token(app: Any, make_app: AppFactory) -> None:
    """Every /admin/ endpoint: 401 with a Bearer challenge without a token, with a wrong one, a prefix or an
    extension of it, the bare token without the scheme, or another scheme; answered with the token; absent (404)
    when no admin token is configured."""
    client = app.test_client()
    admin = endpoints(app, ("/admin/",))
    assert ("/admin/reload", "POST") in admin
    for path, method in admin:
        for given in (None, "", "guess", ADMIN[:-1], ADMIN + "x", ADMIN.upper(), f"Basic {ADMIN}", f"{ADMIN} "):
            headers = {} if given is None else {"Authorization": given if " " in given else f"Bearer {given}"}
            refused = client.open(path, method=method, headers=headers)
            assert refused.status_code == 401, (path, method, given)
            assert refused.headers["WWW-Authenticate"].startswith("Bearer "), (path, method, given)
        right = client.open(path, method=method, headers={"Authorization": f"Bearer {ADMIN}"})
        # a live control (/admin/ops/*) without a body is answered, and refused for not saying who asks
        assert right.status_code == (400 if path.startswith("/admin/ops/") and method == "POST" else 200), (path,
                                                                                                            method)
    plain = make_app(OPEN).test_client()
    assert all(plain.open(p, method=m).status_code == 404 for p, m in admin)


def spy(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[tuple[Any, ...]]:
    """Record every call of module.name (still doing its work)."""
    calls: list[tuple[Any, ...]] = []
    real: Callable[..., Any] = getattr(module, name)

    def recording(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(module, name, recording)
    return calls


def test_secrets_are_compared_in_constant_time(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The admin token, counsellors' PIN hashes and Twilio's signature go through hmac.compare_digest: no early exit
    that a caller could time. A genuine request's signature is compared once, with the one Twilio sent."""
    assert isinstance(app.extensions["ivr.validator"], RequestValidator)
    digests = spy(monkeypatch, hmac, "compare_digest")
    client = app.test_client()
    assert client.post("/admin/reload", headers={"Authorization": "Bearer guess"}).status_code == 401
    assert digests == [(b"guess", ADMIN.encode())]
    params = {"CallSid": "CA" + "6" * 32, "From": COUNSELLOR, "Digits": "111111"}
    status, _, body = post_signed(InProcess(app), BASE + "/counselor/pin?c=1001&n=1", params)
    assert status == 200 and b"/counselor/id?n=2" in body  # a wrong PIN: asked again, from the id
    sent = signed(BASE + "/counselor/pin?c=1001&n=1", params).encode()
    from pathlib import Path  # the PIN's scrypt hash, as the partners file keeps it: scrypt$n$r$p$salt$hash

    stored = (Path(__file__).parents[1] / "ops" / "partners.example.yaml").read_text().split('pin_hash: "')[1]
    _, n, r, p, salt, digest = stored.split('"')[0].split("$")
    tried = hashlib.scrypt(b"111111", salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    assert digests[1:] == [(sent, sent), (tried, base64.b64decode(digest))]
    forged = client.post("/voice/incoming", data={"From": CALLER}, base_url=BASE,
                         headers={"X-Twilio-Signature": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="})
    assert forged.status_code == 403
    # our own comparison; how twilio's validate() then compares the other URL forms is its business
    assert digests[3] == (signed(BASE + "/voice/incoming", {"From": CALLER}).encode(), b"AAAAAAAAAAAAAAAAAAAAAAAAAAA=")


def test_bodies_over_the_limits_get_413_before_the_signature_is_checked(app: Any) -> None:
    """A body declared over 64 kB is refused (413, connection closed) without a byte of it read; a chunked one is cut
    at the limit; a form of more than 200 fields is refused before it is parsed. A genuine webhook, a few kB with
    every parameter Twilio sends, is answered as before."""
    import io

    client, url = app.test_client(), BASE + "/voice/incoming"

    class Unread(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b: Any) -> int:
            raise AssertionError("the body was read")

    big = client.post(url, content_type=FORM, headers={"X-Twilio-Signature": "junk"},
                      environ_overrides={"wsgi.input": Unread(), "CONTENT_LENGTH": str(4 * 1024 * 1024)})
    assert (big.status_code, big.headers["Connection"]) == (413, "close")
    chunked = client.post(url, input_stream=io.BytesIO(b"a=" + b"x" * 100_000), content_type=FORM,
                          headers={"X-Twilio-Signature": "junk", "Transfer-Encoding": "chunked"},
                          environ_overrides={"wsgi.input_terminated": True})  # as gunicorn sets it
    assert chunked.status_code == 413
    fields = {f"F{n}": "x" for n in range(201)}
    assert client.post(url, data=fields, headers={"X-Twilio-Signature": signed(url, fields)}).status_code == 413
    parts = client.post(url, data={**fields, "f": (io.BytesIO(b"x"), "f.txt")},
                        headers={"X-Twilio-Signature": "junk"}, content_type="multipart/form-data")
    assert parts.status_code == 413
    genuine = {"CallSid": "CA" + "6" * 32, "AccountSid": "AC" + "0" * 32, "From": CALLER, "To": "+81120494949",
               "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01",
               **{f"Extra{n}": "y" * 40 for n in range(100)}}  # about 5 kB, 107 fields
    status, kind, body = post_signed(InProcess(app), url, genuine)
    assert (status, kind) == (200, "text/xml; charset=utf-8") and b"<Gather" in body
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'ivr_webhook_rejected_total{reason="too_large"} 4.0' in metrics
