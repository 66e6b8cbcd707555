"""The Twilio API mock itself: it serves Twilio's description, refuses what the description does not allow, and the
twilio client reaches it when pointed at its base URL."""

from __future__ import annotations

from twilio.rest import Client

from tests.twilio_api import ACCOUNT, TwilioApi


def client_for(api: TwilioApi) -> Client:
    client = Client("SK" + "b" * 32, "secret", ACCOUNT)
    client.api.base_url = api.url
    return client


def test_a_valid_request_is_answered_from_the_description(twilio_api: TwilioApi) -> None:
    twilio_api.mark()
    queues = client_for(twilio_api).queues.list(limit=1)
    assert queues and queues[0].sid.startswith("QU")
    assert twilio_api.requests() == [("GET", f"/2010-04-01/Accounts/{ACCOUNT}/Queues.json")]
    assert twilio_api.violations() == []


def test_an_invalid_request_is_refused_and_named(twilio_api: TwilioApi) -> None:
    twilio_api.mark()
    answer = client_for(twilio_api).request(
        "POST", f"{twilio_api.url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json", data={"Body": "x"})
    assert answer.status_code == 422
    assert twilio_api.violations() == ["Request body must have required property 'To'"]
