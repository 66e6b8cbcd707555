"""The peer: what a team would otherwise start from. A Flask phone tree on twilio's `VoiceResponse`, the shape of
Twilio's published Flask IVR sample (a welcome webhook that gathers one key, a menu webhook that answers it), with
or without the request validation Twilio's Flask security guide adds (a `RequestValidator` on every request, 403
when the signature does not match `request.url` and the form).

    PEER_VALIDATE=1 TWILIO_AUTH_TOKEN=... WEB_CONCURRENCY=4 IVR_BIND=127.0.0.1:8002 \\
        python -m gunicorn -c ivr/gunicorn_conf.py --pythonpath bench peer:app

bench/run-all.sh serves it with `ivr serve`'s own gunicorn settings and loads it with the same signed requests as
the service (sent with the service's Host header, so `request.url` is the URL that was signed). Its routes sit on
the service's paths so the same tables reach both: /voice/incoming is the welcome, /voice/menu the menu.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, abort, request, url_for
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse

app = Flask("peer")
VALIDATE = os.environ.get("PEER_VALIDATE") == "1"
GREETING = ("Thank you for calling the support line. For opening hours, press 1. "
            "For a list of offices to call, press 2.")
OFFICES = {"2": "Tokyo", "3": "Osaka", "4": "Sapporo"}


def validated(view: Callable[..., Any]) -> Callable[..., Any]:
    """As the security guide does: a fresh validator per request, over the request's own URL and form."""

    @functools.wraps(view)
    def check(*args: Any, **kwargs: Any) -> Any:
        if VALIDATE:
            validator = RequestValidator(os.environ.get("TWILIO_AUTH_TOKEN", ""))
            if not validator.validate(request.url, request.form, request.headers.get("X-Twilio-Signature", "")):
                abort(403)
        return view(*args, **kwargs)

    return check


def twiml(response: VoiceResponse) -> Response:
    """The sample's way out: the TwiML's text with an XML content type."""
    out = Response(str(response))
    out.headers["Content-Type"] = "text/xml"
    return out


@app.route("/voice/incoming", methods=["POST"])
@validated
def welcome() -> Response:
    response = VoiceResponse()
    with response.gather(num_digits=1, action=url_for("menu"), method="POST") as gather:
        gather.say(GREETING, voice="Polly.Joanna", loop=3)
    return twiml(response)


@app.route("/voice/menu", methods=["POST"])
@validated
def menu() -> Response:
    choice = request.form.get("Digits", "")
    response = VoiceResponse()
    if choice == "1":
        response.say("We are open every day from nine to five.", voice="Polly.Joanna", language="en-GB")
        response.say("Thank you for calling. Goodbye.")
        response.hangup()
    elif choice in ("2", "3"):
        with response.gather(num_digits=1, action=url_for("office"), method="POST") as gather:
            gather.say("To call " + ", ".join(f"{name}, press {key}" for key, name in OFFICES.items()) + ".",
                       voice="Polly.Joanna", language="en-GB", loop=3)
    else:
        response.say("Returning to the main menu.", voice="Polly.Joanna", language="en-GB")
        response.redirect(url_for("welcome"))
    return twiml(response)


@app.route("/voice/office", methods=["POST"])
@validated
def office() -> Response:
    response = VoiceResponse()
    name = OFFICES.get(request.form.get("Digits", ""))
    if name is None:
        response.redirect(url_for("welcome"))
    else:
        response.dial("+81300000000")
    return twiml(response)


@app.route("/healthz")
def healthz() -> Response:
    return Response("ok")
