"""The caller's webhooks served straight off WSGI (ivr/web/front.py): the same answers as through Flask, and
everything the front does not take handed on to Flask with its body intact."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, request_started
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from tests.support import BASE, CALLER, TOKEN, AppFactory

SID = "CA" + "cd" * 16
TWILIO = {"CallSid": SID, "AccountSid": "AC" + "0" * 32, "From": CALLER, "To": "+81120494949",
          "CallStatus": "in-progress", "Direction": "inbound", "ApiVersion": "2010-04-01"}


@contextmanager
def through_flask(app: Flask) -> Iterator[list[str]]:
    """The paths Flask's own request handling served meanwhile (its request_started signal)."""
    seen: list[str] = []

    def started(sender: Flask, **_: object) -> None:
        from flask import request
        seen.append(request.path)

    request_started.connect(started, app)
    try:
        yield seen
    finally:
        request_started.disconnect(started, app)


def post(app: Flask, path: str, form: MultiDict[str, str], prefix: str = "") -> tuple[int, str]:
    """POST `form` to `path` as Twilio signs it (for BASE, under `prefix` as a proxy forwards it)."""
    signature = RequestValidator(TOKEN).compute_signature(BASE + prefix + path, form)
    headers = {"X-Twilio-Signature": signature, **({"X-Forwarded-Prefix": prefix} if prefix else {})}
    response = app.test_client().post(path, data=form, base_url=BASE, headers=headers)
    return response.status_code, response.get_data(as_text=True)


def gather_action(body: str) -> str:
    """The action URL of the answer's <Gather>."""
    gather = ET.fromstring(body).find("Gather")
    assert gather is not None, body
    return gather.attrib["action"]


def test_signed_webhooks_skip_flask_and_answer_as_it_would(make_app: AppFactory) -> None:
    """The incoming call and the menu key are answered by the front, without Flask's request handling; the same
    request with a field repeated (which the front hands on) gets the very same TwiML from Flask."""
    app = make_app()
    with through_flask(app) as flask_served:
        status, first = post(app, "/voice/incoming", MultiDict(TWILIO))
        menu_status, menu = post(app, "/voice/menu", MultiDict({**TWILIO, "Digits": "1"}))
    assert (status, menu_status) == (200, 200)
    assert flask_served == []
    assert gather_action(first).startswith("/voice/menu?")
    assert ET.fromstring(menu).find("Enqueue") is not None or ET.fromstring(menu).find("Dial") is not None, menu

    repeated = MultiDict([*TWILIO.items(), ("Direction", "inbound")])
    with through_flask(app) as flask_served:
        status, again = post(app, "/voice/incoming", repeated)
    assert (status, flask_served) == (200, ["/voice/incoming"])
    assert again == first


def test_the_front_builds_action_urls_under_the_proxys_prefix(make_app: AppFactory) -> None:
    """Behind a proxy that mounts the service under a prefix, Twilio signs the prefixed URL and the next step's
    action URL must carry the prefix, exactly as Flask's url_for gives it."""
    app = make_app()
    with through_flask(app) as flask_served:
        status, body = post(app, "/voice/incoming", MultiDict(TWILIO), prefix="/hotline")
    assert (status, flask_served) == (200, [])
    assert gather_action(body).startswith("/hotline/voice/menu?")
    with app.test_request_context("/hotline/voice/incoming", base_url=BASE + "/hotline"):
        from flask import url_for
        assert gather_action(body).split("?")[0] == url_for("voice.menu")


def test_what_the_front_does_not_take_gets_flasks_answer(make_app: AppFactory) -> None:
    """Unsigned, forged and oversized requests, and another content type, reach Flask with their body intact:
    403, 403, 413, and a signed JSON body is refused as forged (Twilio signs forms)."""
    app = make_app()
    client = app.test_client()
    with through_flask(app) as flask_served:
        unsigned = client.post("/voice/menu", data=TWILIO, base_url=BASE)
        forged = client.post("/voice/menu", data=TWILIO, base_url=BASE, headers={"X-Twilio-Signature": "AAAA"})
        large = client.post("/voice/menu", data={**TWILIO, "Pad": "x" * 70_000}, base_url=BASE,
                            headers={"X-Twilio-Signature": "AAAA"})
        signature = RequestValidator(TOKEN).compute_signature(BASE + "/voice/menu", {})
        as_json = client.post("/voice/menu", json=TWILIO, base_url=BASE, headers={"X-Twilio-Signature": signature})
    assert [r.status_code for r in (unsigned, forged, large, as_json)] == [403, 403, 413, 200]
    assert flask_served == ["/voice/menu"] * 4
    assert ET.fromstring(as_json.get_data(as_text=True)).tag == "Response"  # signed over no form: let in, routed


def test_a_step_failing_in_the_front_still_routes_the_caller(make_app: AppFactory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A view that raises in the front gets the safe answer, not a 500: the general line."""
    app = make_app()
    flows = app.extensions["ivr.flows"]

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in the menu")

    monkeypatch.setattr(flows.current(), "menu_choice", broken)
    with through_flask(app) as flask_served:
        status, body = post(app, "/voice/menu", MultiDict({**TWILIO, "Digits": "1"}))
    assert (status, flask_served) == (200, [])
    root = ET.fromstring(body)
    assert root.find("Enqueue") is not None or root.find("Dial") is not None, body


def test_a_fault_in_the_front_itself_hands_the_request_to_flask(make_app: AppFactory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Had the front's own reading of a request failed, the caller would have had a 500; Flask answers it instead,
    from the body the front had read."""
    import ivr.web.front as front

    def broken(environ: object) -> str:
        raise RuntimeError("a bug reading the host")

    app = make_app()
    monkeypatch.setattr(front, "get_host", broken)
    with through_flask(app) as flask_served:
        status, body = post(app, "/voice/menu", MultiDict({**TWILIO, "Digits": "1"}))
    assert (status, flask_served) == (200, ["/voice/menu"])
    root = ET.fromstring(body)
    assert root.find("Enqueue") is not None or root.find("Dial") is not None, body


def test_when_even_the_safe_answer_fails_the_caller_gets_the_last_resort(make_app: AppFactory,
                                                                          monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A step that fails, then a safe answer that fails too (here its error count cannot be written): the front
    answered 500, where Flask's error handler takes a second try. The caller now hears the boot config's last
    words: valid TwiML with the lines to call."""
    app = make_app()

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in the menu")

    class Unwritable:
        def labels(self, *_: object) -> Unwritable:
            raise OSError("no space left for the metrics file")

    monkeypatch.setattr(app.extensions["ivr.flows"].current(), "menu_choice", broken)
    monkeypatch.setattr(app.extensions["ivr.metrics"], "errors", Unwritable())
    status, body = post(app, "/voice/menu", MultiDict({**TWILIO, "Digits": "1"}))
    assert status == 200
    root = ET.fromstring(body)
    assert root.tag == "Response" and root.find("Say") is not None and root[-1].tag == "Hangup", body


def test_a_prefix_outside_ascii_gives_the_action_urls_flask_gives(make_app: AppFactory) -> None:
    """A proxy's prefix arrives in SCRIPT_NAME as latin-1 text of its UTF-8 bytes; Flask decodes it, and so must
    the front, or the next step's URL would be mojibake."""
    app = make_app(IVR_PUBLIC_URL=BASE + "/café")
    form = MultiDict(TWILIO)
    signature = RequestValidator(TOKEN).compute_signature(BASE + "/café/voice/incoming", form)
    with through_flask(app) as flask_served:
        response = app.test_client().post("/voice/incoming", data=form, base_url=BASE, headers={
            "X-Twilio-Signature": signature, "X-Forwarded-Prefix": "/café".encode().decode("latin-1")})
    body = response.get_data(as_text=True)
    assert (response.status_code, flask_served) == (200, []), body
    with app.test_request_context("/voice/incoming", base_url=BASE,
                                  environ_overrides={"SCRIPT_NAME": "/café".encode().decode("latin-1")}):
        from flask import url_for
        assert gather_action(body).split("?")[0] == url_for("voice.menu") == "/café/voice/menu"
