"""TwiML is written exactly as twilio writes it."""

from __future__ import annotations

import itertools

from twilio.twiml.voice_response import VoiceResponse

from ivr.clock import parse_instant
from ivr.render import render
from tests.support import AppFactory


def test_every_answer_of_the_flow_is_written_as_twilio_writes_it(make_app: AppFactory) -> None:
    """Menus, routes, waits, outcomes, referral lines and the closed message, open and closed, byte for byte what
    twilio's to_xml() gives, so Twilio parses the same documents."""
    app = make_app()
    flow = app.extensions["ivr.config"].current.flow
    documents = []
    with app.test_request_context("/voice/incoming", base_url="https://hotline.example.jp"):
        for at in ("2025-05-03T03:00:00+09:00", "2024-01-04T10:00:00+09:00", "2026-11-23T12:00:00+09:00"):
            t = parse_instant(at)
            steps = [flow.incoming(t), flow.fallback(t), flow.queue_done(t, "queue-full", "general", "ja", 0)]
            steps += [flow.menu_choice(t, key, n) for key, n in itertools.product("0123456789*#?", (1, 3))]
            steps += [flow.language_choice(t, key, n) for key, n in itertools.product("0123456789", (1, 3))]
            steps += [flow.referrals(t, key, "under18", lang, 9, 1) for key, lang in itertools.product("12", ("ja", "en"))]
            steps += [flow.dial_done(t, status, "women", "ja", 0) for status in ("completed", "busy", "no-answer")]
            documents += [s.twiml for s in steps]
        documents += [flow.wait("foreign", lang, "worldbridge", qt, pos, avg).twiml
                      for lang, qt, pos, avg in itertools.product(("en", "pt"), (0, 20, 290, 300), (0, 7), (30, 240))]
    odd = VoiceResponse()
    odd.say('a & b < c > d "e"\n').append("after")
    odd.redirect("/voice/menu?n=1&x=\"<>\"\t\r", method="POST")
    odd.append("text").append("last text")
    odd.pause(length=0)
    odd.leave()
    for doc in [*documents, odd]:
        assert render(doc) == doc.to_xml()
    assert len({render(d) for d in documents}) > 50  # many different documents were compared
