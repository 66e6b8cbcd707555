"""The signature check answers exactly as twilio's RequestValidator does, with one HMAC for a genuine request."""

from __future__ import annotations

import itertools

from twilio.request_validator import RequestValidator
from werkzeug.datastructures import ImmutableMultiDict

from ivr.web.guard import signed_by_twilio

TOKEN = "12345"
URLS = ("https://mycompany.com/myapp.php?foo=1&bar=2", "https://mycompany.com:443/myapp.php?foo=1&bar=2",
        "http://127.0.0.1:8000/voice/wait?p=x&o=y", "http://127.0.0.1/voice/menu?n=1",
        # paths a percent-decoded request can carry, which twilio's check normalises (urlparse drops tabs and
        # newlines, an empty fragment or parameters) before signing
        "https://h.example.jp/voice/incoming\t", "https://h.example.jp/voice/inc\noming",
        "https://h.example.jp/voice/incoming#", "https://h.example.jp/voice/x;")
FORMS = ({"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
          "To": "+18005551212"}, {}, [("Digits", "1"), ("Digits", "2"), ("To", "+81120494949")])


def test_valid_and_forged_requests_get_the_same_answer_as_twilios_check() -> None:
    """Signed with or without the port, forged, or with a repeated field: a caller is let in exactly when twilio's
    own RequestValidator would let them in."""
    theirs = RequestValidator(TOKEN)
    answers = []
    for signed_url, asked_url, form in itertools.product(URLS, URLS, FORMS):
        params = ImmutableMultiDict(form)
        for signature in (theirs.compute_signature(signed_url, params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=", ""):
            expected = theirs.validate(asked_url, params, signature)
            ours = signed_by_twilio(theirs, asked_url, params, signature)
            assert ours == expected, (signed_url, asked_url, form, signature)
            answers.append(expected)
    assert True in answers and False in answers
    assert signed_by_twilio(theirs, URLS[0], ImmutableMultiDict(FORMS[0]), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")  # Twilio's vector


def test_the_fronts_form_is_signed_as_a_multidict_is() -> None:
    """The front hands twilio's validator its own form type (ivr.web.front.Fields); a signature over it must be
    the one over the same fields in a werkzeug MultiDict, or genuine callers would be refused."""
    from urllib.parse import urlencode

    from ivr.web.front import fields

    theirs = RequestValidator(TOKEN)
    for url, form in itertools.product(URLS, FORMS[:2]):
        ours = fields(urlencode(form).encode())
        assert ours is not None and dict(ours) == form
        assert theirs.compute_signature(url, ours) == theirs.compute_signature(url, ImmutableMultiDict(form))
    assert fields(urlencode(FORMS[2]).encode()) is None  # a repeated field: handed on to Flask


def test_the_fronts_form_reads_as_parse_qsl_reads_it() -> None:
    """The front splits a url-encoded form itself; on every body it must read the fields urllib's parse_qsl reads
    (blank values kept), and refuse (None) exactly the bodies with a repeated name or bytes that are not UTF-8."""
    import random
    from urllib.parse import parse_qsl

    from ivr.web.front import fields

    def reference(raw: bytes) -> dict[str, str] | None:
        try:
            pairs = parse_qsl(raw.decode(), keep_blank_values=True, errors="strict")
        except UnicodeError:
            return None
        found = dict(pairs)
        return found if len(found) == len(pairs) else None

    rng = random.Random(9999)
    pieces = ["a", "b", "=", "&", "&&", "%", "%2", "%2B", "%E3%81%82", "%FF", "+", "From", "%2b81", "é", " ", ";"]
    bodies = [b"", b"&", b"=", b"a", b"a=", b"=a", b"a=b=c", b"a=1&a=2", b"a=1&b=2&", b"a=%FF", b"\xff=1", b"a+b=c+d"]
    bodies += ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 12))).encode() for _ in range(20_000)]
    for raw in bodies:
        ours, expected = fields(raw), reference(raw)
        assert (dict(ours) if ours is not None else None) == expected, raw
    assert fields(b"a=%FF") is None and fields(b"a=1&a=2") is None
    assert dict(fields(b"From=%2B81%2090&Digits=1&x") or {}) == {"From": "+81 90", "Digits": "1", "x": ""}
