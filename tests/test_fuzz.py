"""Property tests: whatever a correctly signed request carries, every webhook answers with TwiML Twilio accepts and
that leaves the caller a next step. Endpoints are read from the URL map, so a new one is fuzzed too."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from defusedxml.ElementTree import fromstring
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.tools.standin import InProcess, twiml_problem
from ivr.web.guard import MAX_BODY
from tests.support import BASE, CALLER, AppFactory, next_step_problem, post_signed

SIGNED = ("/voice/", "/counselor/")
WAIT_VERBS = {"Play", "Say", "Pause", "Gather", "Redirect", "Leave", "Hangup"}  # what a waitUrl may answer
COUNSELLOR = "+15005550010"  # ops/partners.example.yaml: counsellor 1001's phone, PIN 482193
FUZZ = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])

odd = st.one_of(
    st.text(max_size=30),  # any unicode, empty included
    st.text(alphabet="0123456789*#+- ", max_size=20),
    st.sampled_from(["-1", "0", "99999999999999999999", "1e3", " 2 ", "١", "²", "NaN", "\x00", "\r\n", "%00"]),
)
huge = st.builds(lambda piece, n: piece * n, st.text(min_size=1, max_size=3), st.integers(1_000, 4_000))


def known_or_odd(*values: str, big: bool = False) -> st.SearchStrategy[str]:
    """A value Twilio or our own action URLs would send (half the time), or anything at all (with `big`, up to 12,000
    characters)."""
    known = st.sampled_from(values)
    return st.one_of(known, known, known, odd, *([huge] if big else []))


FORM = {
    "CallSid": known_or_odd(*(f"CA{c * 32}" for c in "0123456789abcdef"), "CA", "ca" + "F" * 32),
    "AccountSid": known_or_odd("AC" + "0" * 32),
    "From": known_or_odd(CALLER, COUNSELLOR, "anonymous", "+266696687", "client:alice", "", big=True),
    "To": known_or_odd("+81120494949", "sip:hotline@example.jp"),
    "CallStatus": known_or_odd("ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled"),
    "Digits": known_or_odd(*"0123456789*#", "482193", "12", "", "timeout", "hangup", big=True),
    "SpeechResult": st.one_of(odd, huge), "Confidence": known_or_odd("0.9", "-1"),
    "QueueResult": known_or_odd("bridged", "bridging-in-process", "error", "hangup", "leave", "redirected",
                                "redirected-from-bridged", "queue-full", "system-error", "HANGUP "),
    "QueueTime": known_or_odd("0", "40", "299", "300", "86400"), "QueuePosition": known_or_odd("1", "0", "250"),
    "AvgQueueTime": known_or_odd("0", "120", "3600"),
    "DialCallStatus": known_or_odd("completed", "answered", "busy", "no-answer", "failed", "canceled"),
    "DialCallDuration": known_or_odd("0", "300"), "ErrorCode": known_or_odd("11200", "12100"),
}
QUERY = {  # what our action URLs carry: option, language, chain step, tries, partner, queue, idle rounds, the
    # urgent lane, whose wording the caller hears, a counsellor's id and their login's tag
    "o": known_or_odd("general", "under18", "foreign", "gender", "women", "disaster", "../../etc", big=True),
    "l": known_or_odd("ja", "en", "zh", "ko", "vi", "pt", "es", "fil", "xx"),
    "s": known_or_odd("0", "1", "2", "3", "19", "20", "-4"), "n": known_or_odd("1", "2", "3", "4", "0"),
    "p": known_or_odd("tsunagari", "sakura", "hinata", "kodomo", "nobody"),
    "q": known_or_odd("general-tsunagari", "women-sakura-urgent"), "i": known_or_odd("0", "9", "10"),
    "u": known_or_odd("1", "0", "yes"), "w": known_or_odd("under18", "suicidal", "general", "nobody"),
    "c": known_or_odd("1001", "1002", "9999", ""), "k": known_or_odd("0" * 32, "f" * 32, ""),
}
extra = st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k != "bodySHA256"), st.one_of(odd, huge),
                        max_size=3)


TWILIO_SENDS = ("CallSid", "AccountSid", "From", "To", "CallStatus")  # on every request
STEP_SENDS = {  # what each step is sent besides: by Twilio (form), by our own action URL (query)
    "/voice/menu": (("Digits",), ("n",)), "/voice/language": (("Digits",), ("n",)),
    "/voice/referrals": (("Digits",), ("o", "l", "s", "n", "u", "w")),
    "/voice/wait": (("QueueTime", "QueuePosition", "AvgQueueTime"), ("p", "o", "l", "s", "u", "w")),
    "/voice/queue-done": (("QueueResult", "QueueTime"), ("q", "p", "o", "l", "s", "u", "w")),
    "/voice/dial-done": (("DialCallStatus", "DialCallDuration"), ("p", "o", "l", "s", "u", "w")),
    "/voice/fallback": (("ErrorCode",), ()), "/counselor/pin": (("Digits",), ("n", "c")),
    "/counselor/id": (("Digits",), ("n",)), "/counselor/next": (("Digits",), ("c", "k")),
    "/counselor/after": (("DialCallStatus", "DialCallDuration"), ("i", "c", "k")),
    "/counselor/connecting": ((), ("l",)),
}


def params(known: dict[str, st.SearchStrategy[str]], sent: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    """The parameters this step is always sent, any of the other known ones, and a few of any name."""
    always = {k: v for k, v in known.items() if k in sent}
    maybe = {k: v for k, v in known.items() if k not in sent}
    return st.tuples(st.fixed_dictionaries(always, optional=maybe), extra).map(lambda both: {**both[1], **both[0]})


def heard_hangup(query: dict[str, str], form: dict[str, str]) -> bool:
    """The queue told us the caller hung up (QueueResult read as the step reads it: query first, trimmed, lower)."""
    value = query["QueueResult"] if "QueueResult" in query else form.get("QueueResult", "")
    return value.strip()[:64].lower() == "hangup"


@pytest.mark.parametrize("at", ["2025-05-03T03:00:00+09:00", "2026-12-30T17:00:00+09:00", "2026-11-23T12:00:00+09:00"],
                         ids=["open", "part-staffed", "closed"])
def test_any_signed_request_gets_twiml_with_a_next_step(make_app: AppFactory, at: str) -> None:
    """Arbitrary parameters, values and action-URL query strings, correctly signed, to every /voice/ and /counselor/
    endpoint (and unknown ones): never a 5xx, always TwiML that parses, has <Response> as root, is under 64 kB and
    leaves the caller a next step; a wait answer uses only the verbs a waitUrl allows. A body over 64 kB (huge values
    of characters that encode to several bytes each) gets 413 instead."""
    app = make_app(at, IVR_PARTNERS_FILE=str(Path(__file__).parents[1] / "ops" / "partners.example.yaml"))
    known = sorted(r.rule for r in app.url_map.iter_rules() if r.rule.startswith(SIGNED))
    assert len(known) >= 14
    transport = InProcess(app)

    def fuzz(paths: st.SearchStrategy[str], form_keys: tuple[str, ...] = (), query_keys: tuple[str, ...] = ()) -> None:
        @FUZZ
        @given(path=paths, query=params(QUERY, query_keys), form=params(FORM, TWILIO_SENDS + form_keys))
        def check(path: str, query: dict[str, str], form: dict[str, str]) -> None:
            url = BASE + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
            status, ctype, body = post_signed(transport, url, form)
            size = len(urllib.parse.urlencode(form).encode())  # within a few bytes of what the test client sends
            if status == 413 or size > MAX_BODY + 1024:  # over 64 kB: refused before it is read, as Twilio never sends
                assert status == 413 and size > MAX_BODY - 1024, (status, size)
                return
            if path == "/voice/status":
                assert status == 204
                return
            assert twiml_problem(status, ctype, body) is None, (status, body[:300])
            root: Any = fromstring(body)
            gone = path == "/voice/queue-done" and heard_hangup(query, form)
            assert next_step_problem(root, caller_gone=gone) is None, body
            if path == "/voice/wait":
                assert {v.tag for v in root} <= WAIT_VERBS

        check()

    for path in known:
        fuzz(st.just(path), *STEP_SENDS.get(path, ((), ())))
    fuzz(st.tuples(st.sampled_from(SIGNED), st.from_regex(r"[a-z\-]{1,16}", fullmatch=True)).map("".join))
    errors = app.extensions["ivr.metrics"].registry
    assert sum(s.value for m in errors.collect() if m.name == "ivr_webhook_errors" for s in m.samples
               if s.name.endswith("_total")) == 0  # no step raised (the safe answer would hide it above)
