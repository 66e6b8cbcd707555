"""The operators' endpoints: the admin token is taken only as RFC 6750 says (`Bearer <token>`, the scheme in any case)
and anything else gets 401 with a Bearer challenge; /readyz tells anyone booleans and a reason, the token the rest."""

from __future__ import annotations

import os
from typing import Any

import pytest

from ivr.clock import Clock
from tests.support import AppFactory

OPEN = "2025-05-03T03:00:00+09:00"
ADMIN = "a.b_c~d+e/f-0123456789=="  # every b64token character
ACCEPTED = [f"Bearer {ADMIN}", f"bearer {ADMIN}", f"BEARER {ADMIN}", f"bEaReR {ADMIN}", f"Bearer   {ADMIN}"]
NO_BEARER = [  # no token in the Bearer form: 401 without an error code (RFC 6750 section 3.1)
    None, "", ADMIN, f"Basic {ADMIN}", f"Token {ADMIN}", f"{ADMIN} Bearer", "Bearer", "Bearer ", f"Bearer{ADMIN}",
    f"Bearer: {ADMIN}", f"Bearer={ADMIN}", f"Bearer\t{ADMIN}", f"Bearer {ADMIN} {ADMIN}", f"Bearer {ADMIN} x",
    f"Bearer {ADMIN},", f"Bearer {ADMIN}, Basic x", f'Bearer "{ADMIN}"', f"Bearer {ADMIN}=x", f"Bearer ={ADMIN}",
    f"Bearer {ADMIN}\u00e9", f"Bearer Bearer {ADMIN}",
]
WRONG = [f"Bearer {ADMIN[:-1]}", f"Bearer {ADMIN}=", f"Bearer {ADMIN[:-2]}", f"Bearer {ADMIN.upper()}", "Bearer guess",
         f"bearer x{ADMIN}"]


@pytest.fixture
def app(make_app: AppFactory) -> Any:
    return make_app(OPEN, IVR_ADMIN_TOKEN=ADMIN)


def reload(app: Any, authorization: str | None) -> Any:
    headers = {} if authorization is None else {"Authorization": authorization}
    return app.test_client().post("/admin/reload", headers=headers)


@pytest.mark.parametrize("authorization", ACCEPTED)
def test_the_bearer_scheme_is_taken_in_any_case(app: Any, authorization: str) -> None:
    """An operator's `curl -H 'authorization: bearer ...'` (or a client that lowercases the scheme) can reload."""
    resp = reload(app, authorization)
    assert (200, "unchanged") == (resp.status_code, resp.get_json()["result"])


@pytest.mark.parametrize("authorization", NO_BEARER)
def test_anything_but_one_bearer_token_gets_401_and_a_challenge(app: Any, authorization: str | None) -> None:
    """The bare token, another scheme, no token or more than one: 401 with `WWW-Authenticate: Bearer`, nothing
    reloaded, the token never echoed."""
    resp = reload(app, authorization)
    assert (401, 'Bearer realm="ivr-admin"') == (resp.status_code, resp.headers.get("WWW-Authenticate"))
    assert ADMIN not in resp.get_data(as_text=True)


@pytest.mark.parametrize("authorization", WRONG)
def test_a_wrong_bearer_token_gets_401_invalid_token(app: Any, authorization: str) -> None:
    """A well-formed but wrong token (a prefix, an extension, another case of it): 401 saying the token is invalid."""
    resp = reload(app, authorization)
    assert (401, 'Bearer realm="ivr-admin", error="invalid_token"') == (
        resp.status_code, resp.headers.get("WWW-Authenticate"))


def public_ready(app: Any, **headers: str) -> tuple[int, dict[str, Any], str]:
    resp = app.test_client().get("/readyz", headers=headers)
    return resp.status_code, resp.get_json(), resp.get_data(as_text=True)


def test_readyz_tells_anyone_only_booleans_and_a_reason(make_app: AppFactory) -> None:
    """A probe (or anyone on the internet) learns ready or not and why, never a file path, a worker id or the clock."""
    for app, clock, reason in [(make_app(OPEN, IVR_ADMIN_TOKEN=ADMIN), False, "clock_simulated"),
                               (make_app(OPEN, CLOCK=Clock()), True, "ok")]:
        status, body, text = public_ready(app)
        assert (200, {"ready": True, "config": True, "store": True, "clock": clock, "reason": reason}) == (status, body)
        for secret in ("routing.yaml", "menu.yaml", str(os.getpid()), app.extensions["ivr.config"].current.digest,
                       "redis", "2025-", "offset"):
            assert secret not in text, secret


def test_readyz_details_only_with_the_admin_token(app: Any, make_app: AppFactory) -> None:
    """With the admin token an operator sees the config files and hash, the worker, the store and the clock; a wrong
    or malformed token gets the public answer (readiness never depends on it), as does any token when none is set."""
    status, body, _ = public_ready(app, Authorization=f"bearer {ADMIN}")
    details = body.pop("details")
    assert (200, {"ready": True, "config": True, "store": True, "clock": False, "reason": "clock_simulated"}) == (
        status, body)
    assert details["config"]["routing"].endswith("routing/routing.yaml")
    assert details["config"]["menu"].endswith("menus/menu.yaml")
    assert details["config"]["hash"] == app.extensions["ivr.config"].current.digest
    assert (os.getpid(), {"kind": "redis", "degraded": False}) == (details["worker"], details["store"])
    assert (True, True, "2025-05-02T18:00:00+00:00") == (
        details["clock"]["simulated"], details["clock"]["frozen"], details["clock"]["now"])
    public = {"ready": True, "config": True, "store": True, "clock": False, "reason": "clock_simulated"}
    for given in (ADMIN, f"Bearer {ADMIN}x", f"Basic {ADMIN}", "Bearer"):
        assert (200, public) == public_ready(app, Authorization=given)[:2], given
    assert (200, public) == public_ready(make_app(OPEN), Authorization=f"Bearer {ADMIN}")[:2]
