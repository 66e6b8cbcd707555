"""The webhook boundary: signatures, odd parameters, Redis failures, state, logs and metrics."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import redis
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs
from twilio.request_validator import RequestValidator

from ivr.settings import SettingsError
from ivr.tools.standin import CallResult, InProcess, StandIn, twiml_problem
from tests.support import BASE, CALLER, TOKEN, AppFactory, RedisServer, call

OPEN = "2025-05-03T03:00:00+09:00"
SID = "CA" + "ab" * 16


def post(app, path: str, params: dict[str, str], token: str = TOKEN, signature: str | None = None,
         base: str = BASE, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    sig = RequestValidator(token).compute_signature(base + path, params) if signature is None else signature
    return app.test_client().post(path, data=params, base_url=base,
                                  headers={"X-Twilio-Signature": sig, **(headers or {})})


TWILIO = {"CallSid": SID, "AccountSid": "AC" + "0" * 32, "From": CALLER, "To": "+81120494949",
          "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}


@pytest.mark.parametrize("path", ["/voice/incoming", "/voice/menu?n=1", "/voice/status", "/voice/fallback",
                                  "/voice/wait?o=general&l=ja&s=0", "/voice/no-such-step"])
def test_unsigned_forged_and_wrong_token_get_403(make_app: AppFactory, path: str, redis_url: str) -> None:
    """Requests not signed by Twilio with our token are refused with 403 and nothing is recorded."""
    app = make_app(OPEN)
    client = app.test_client()
    assert client.post(path, data=TWILIO, base_url=BASE).status_code == 403
    assert post(app, path, TWILIO, signature="RSOYDt4T1cUTdK1PDd93/VVr8B8=").status_code == 403
    assert post(app, path, TWILIO, token="another-accounts-token").status_code == 403
    tampered = post(app, path, TWILIO, signature=RequestValidator(TOKEN).compute_signature(BASE + path, {}))
    assert tampered.status_code == 403
    assert redis.Redis.from_url(redis_url).dbsize() == 0
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'ivr_webhook_rejected_total{reason="unsigned"} 1.0' in metrics
    assert 'ivr_webhook_rejected_total{reason="forged"} 3.0' in metrics


def test_signed_request_is_answered(make_app: AppFactory) -> None:
    """The same request correctly signed gets TwiML."""
    resp = post(make_app(OPEN), "/voice/incoming", TWILIO)
    assert resp.status_code == 200
    assert resp.content_type == "text/xml; charset=utf-8"
    assert resp.get_data().startswith(b'<?xml version="1.0" encoding="UTF-8"?><Response><Gather')


def test_reference_signature_vector() -> None:
    """The signing code the app and the stand-in share computes Twilio's published test vector."""
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675309", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212"}
    sig = RequestValidator("12345").compute_signature("https://mycompany.com/myapp.php?foo=1&bar=2", params)
    assert sig == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_public_url_setting_is_what_gets_verified(make_app: AppFactory) -> None:
    """Behind a proxy, a request signed for IVR_PUBLIC_URL verifies even though the app sees another host."""
    app = make_app(OPEN, IVR_PUBLIC_URL="https://ivr.example.org/hotline/")
    sig = RequestValidator(TOKEN).compute_signature("https://ivr.example.org/hotline/voice/incoming", TWILIO)
    assert post(app, "/voice/incoming", TWILIO, signature=sig, base="http://10.0.0.5:8000").status_code == 200
    assert post(app, "/voice/incoming", TWILIO, base="http://10.0.0.5:8000").status_code == 403


def test_forwarded_headers_are_honoured_without_public_url(make_app: AppFactory) -> None:
    """Without IVR_PUBLIC_URL, ProxyFix restores the https URL Twilio signed from X-Forwarded-* headers."""
    app = make_app(OPEN)
    sig = RequestValidator(TOKEN).compute_signature("https://public.example.jp/voice/incoming", TWILIO)
    resp = post(app, "/voice/incoming", TWILIO, signature=sig, base="http://127.0.0.1:8000",
                headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.jp"})
    assert resp.status_code == 200


def test_boot_without_token_stops_with_a_clear_message() -> None:
    """A missing auth token stops the boot instead of turning every call into a 403."""
    from ivr.app import create_app

    with pytest.raises(SettingsError, match=r"^TWILIO_AUTH_TOKEN is not set"):
        create_app({"TWILIO_AUTH_TOKEN": ""})


def assert_safe(body: bytes, status: int = 200, content_type: str = "text/xml; charset=utf-8") -> ET.Element:
    assert twiml_problem(status, content_type, body) is None
    root = ET.fromstring(body)
    verbs = [v.tag for v in root]
    assert verbs and verbs != ["Hangup"]
    return root


@pytest.mark.parametrize(("path", "params"), [
    ("/voice/menu?n=1", {}),
    ("/voice/menu?n=1", {"Digits": "#*"}),
    ("/voice/menu?n=abc", {"Digits": "1"}),
    ("/voice/menu?n=1", {"From": "9" * 5000, "Digits": "2"}),
    ("/voice/language?n=99", {"Digits": "x"}),
    ("/voice/queue-done?o=../../etc&l=xx&s=-4", {"QueueResult": "exploded"}),
    ("/voice/queue-done", {}),
    ("/voice/dial-done?o=disaster&l=ja&s=999999", {"DialCallStatus": ""}),
    ("/voice/wait?o=&l=", {}),
    ("/voice/incoming", {"CallSid": "", "From": "x" * 5000, "To": ""}),
    ("/voice/no-such-step", {}),
])
def test_odd_parameters_still_get_safe_twiml(make_app: AppFactory, path: str, params: dict[str, str]) -> None:
    """Missing or malformed parameters get valid TwiML that keeps the caller moving, never a 5xx."""
    app = make_app(OPEN)
    data = {**TWILIO, **params}
    if "CallSid" in params:
        data["CallSid"] = params["CallSid"]
    resp = post(app, path, data)
    root = assert_safe(resp.get_data(), resp.status_code, resp.content_type)
    tags = [v.tag for v in root]
    if path.startswith("/voice/wait"):  # the waiting caller hears the wait message; Twilio asks again after it
        assert tags == ["Say", "Play", "Pause", "Say", "Play", "Pause"]  # the hold sound, never 10 s of silence
    else:  # a next step with a person, or spoken alternatives before the end
        assert {"Gather", "Enqueue", "Dial"} & set(tags) or (tags[-1] == "Hangup" and "Say" in tags), tags


def test_menu_without_digits_counts_as_silence(make_app: AppFactory) -> None:
    """No Digits at all is heard as 'nothing pressed' and the menu is offered again."""
    resp = post(make_app(OPEN), "/voice/menu?n=1", TWILIO)
    root = ET.fromstring(resp.get_data())
    gather = root.find("Gather")
    assert gather is not None and gather.get("action") == "/voice/menu?n=2"
    assert "".join(gather.itertext()).startswith("番号が押されませんでした。")


def test_a_crash_in_a_step_still_routes_the_caller(make_app: AppFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """If a step raises, the caller is put through to the general line, not given a 500."""
    app = make_app(OPEN)
    flow = app.extensions["ivr.flows"].current()

    def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(flow, "menu_choice", broken)
    with capture_logs() as logs:
        result = call(app, ["1"])
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"
    assert not result.fallback_used
    assert "ただいま、システムに不具合が起きています。相談員におつなぎしますので、そのままお待ちください。" in result.heard()
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["webhook_failed"]


def test_stand_in_uses_fallback_url_when_the_app_answers_500(make_app: AppFactory) -> None:
    """When the Voice URL itself fails, Twilio's fallback request puts the caller through to the general line."""
    app = make_app(OPEN)

    class Broken(InProcess):
        def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
            if url.endswith("/voice/incoming"):
                return 500, "text/html", b"<h1>boom</h1>"
            return super().post(url, params, signature)

    result = StandIn(Broken(app), TOKEN, BASE).call()
    assert result.fallback_used
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_fallback_routes_with_redis_stopped(make_app: AppFactory, own_redis: RedisServer) -> None:
    """With Redis down, the fallback URL still puts the caller through to the general line."""
    app = make_app(OPEN, REDIS_URL=own_redis.url)
    own_redis.stop()
    result = StandIn(InProcess(app), TOKEN, BASE).call("/voice/fallback")
    assert result.heard()[0] == "ただいま、システムに不具合が起きています。相談員におつなぎしますので、そのままお待ちください。"
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_whole_call_with_redis_down_reaches_a_partner(make_app: AppFactory, own_redis: RedisServer) -> None:
    """Redis only enriches: a call placed while Redis is down reaches its partner, and readiness says degraded."""
    app = make_app(OPEN, REDIS_URL=own_redis.url)
    own_redis.stop()
    with capture_logs() as logs:
        result = call(app, ["4"])
    assert result.connected is not None and result.connected.target == "queue gender-niji"
    assert result.requests[-1] == ("/voice/status", 204)
    assert [e["event"] for e in logs].count("store_unreachable") == 1
    ready = app.test_client().get("/readyz")
    assert (200, True, False, "store_unreachable") == (ready.status_code, ready.get_json()["ready"],
                                                       ready.get_json()["store"], ready.get_json()["reason"])
    assert "ivr_state_degraded 1.0" in app.test_client().get("/metrics").get_data(as_text=True)


def test_redis_recovering_is_noticed(make_app: AppFactory, own_redis: RedisServer) -> None:
    """After Redis comes back, readiness reports it healthy again without a restart."""
    app = make_app(OPEN, REDIS_URL=own_redis.url)
    own_redis.stop()
    assert app.test_client().get("/readyz").get_json()["store"] is False
    own_redis.start()
    app.extensions["ivr.store"]._down_until = 0.0  # skip the 2 s back-off rather than sleep in a test
    assert app.test_client().get("/readyz").get_json()["store"] is True


def test_a_wait_round_that_finds_redis_down_leaves_it_alone_for_the_next_rounds(make_app: AppFactory,
                                                                              own_redis: RedisServer) -> None:
    """A wait round asks Redis whether a counsellor took the caller. When Redis does not answer, the store's
    back-off starts, so the next rounds (of every waiting call) do not wait on Redis again, and the caller keeps
    their place with the hold sound."""
    app = make_app(OPEN, REDIS_URL=own_redis.url)
    own_redis.stop()
    later_round = {**TWILIO, "CallStatus": "in-progress", "QueueTime": "40", "QueuePosition": "2",
                   "QueueSid": "QU" + "0" * 32}
    path = "/voice/wait?p=tsunagari&o=general&l=ja&s=0"
    with capture_logs() as logs:
        first = post(app, path, later_round)
        second = post(app, path, later_round)
    for answer in (first, second):
        root = ET.fromstring(answer.data)
        assert answer.status_code == 200 and [el.tag for el in root][-1] == "Pause" and root.find("Leave") is None
    events = [e["event"] for e in logs]
    assert (events.count("store_unreachable"), events.count("handover_store_failed")) == (1, 0)
    assert app.extensions["ivr.store"].degraded  # type: ignore[attr-defined]


def test_a_redis_error_in_a_handover_read_starts_the_stores_back_off(make_app: AppFactory,
                                                                     own_redis: RedisServer) -> None:
    """Handover reads (a counsellor's claim, a bridge, a transfer) go to Redis directly. When Redis did not answer
    one, the store was not told, and every later request asked again and waited out its timeout."""
    from ivr.state import handover

    app = make_app(OPEN, REDIS_URL=own_redis.url)
    store = app.extensions["ivr.store"]  # type: ignore[attr-defined]
    own_redis.stop()
    with capture_logs() as logs:
        assert handover.desk_of(store, SID) is None
        assert handover.desk_of(store, SID) is None
    assert [e["event"] for e in logs] == ["handover_store_failed", "store_unreachable"]
    assert store.degraded


def test_a_first_wait_round_reads_and_writes_redis_in_one_round_trip(make_app: AppFactory, redis_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller's first wait round notes their queue, asks whether a counsellor took them and reads the partner's
    recent rate (for an honest estimate): three round trips to Redis, each about 0.25 ms of CPU under gevent,
    twice a call. They now go in one; what the round read still decides it (a caller taken goes to the desk)."""
    app = make_app(OPEN)
    store = app.extensions["ivr.store"]  # type: ignore[attr-defined]
    client = redis.Redis.from_url(redis_url)
    path = "/voice/wait?p=tsunagari&o=general&l=ja&s=0"
    first_round = {**TWILIO, "CallStatus": "in-progress", "QueueTime": "0", "QueuePosition": "3",
                   "QueueSid": "QU" + "1" * 32}
    post(app, path, {**first_round, "CallSid": "CA" + "9" * 32})  # the process's live controls, read once
    checked_out: list[int] = []
    pool, real = store.client.connection_pool, store.client.connection_pool.get_connection
    monkeypatch.setattr(pool, "get_connection", lambda *a, **k: checked_out.append(1) or real(*a, **k))
    answer = post(app, path, first_round)
    assert answer.status_code == 200 and ET.fromstring(answer.data).find("Leave") is None
    assert len(checked_out) == 1
    assert client.hget(f"ivr:call:{SID}", "queue_sid") == ("QU" + "1" * 32).encode()
    client.set(f"ivr:claim:{SID}", "desk-0123456789abcdef")  # a counsellor takes the caller
    answer = post(app, path, {**first_round, "QueueTime": "25"})
    assert [el.tag for el in ET.fromstring(answer.data)] == ["Leave"] and len(checked_out) == 2


def test_call_state_in_redis_has_a_ttl_and_no_caller_number(make_app: AppFactory, redis_url: str) -> None:
    """The call's record lives under ivr:call:<CallSid> with a TTL; the caller's number is nowhere in Redis."""
    app = make_app(OPEN)
    result: CallResult = call(app, ["3", "5"])
    client = redis.Redis.from_url(redis_url)
    key = f"ivr:call:{result.call_sid}"
    record = {k.decode(): v.decode() for k, v in client.hgetall(key).items()}
    assert {k: record[k] for k in ("campaign", "window", "option", "lang", "route", "partner", "result")} == {
        "campaign": "gw-2025", "window": "open", "option": "foreign", "lang": "pt", "route": "queue",
        "partner": "worldbridge", "result": "answered"}
    assert 0 < client.ttl(key) <= 6 * 3600
    assert all(client.ttl(k) > 0 for k in client.scan_iter("ivr:*"))
    for k in client.scan_iter():  # ours and RQ's
        kind = client.type(k)
        value = (repr(client.hgetall(k)) if kind == b"hash" else repr(client.lrange(k, 0, -1)) if kind == b"list"
                 else repr(client.get(k)) if kind == b"string" else "")
        for needle in (CALLER, CALLER[1:], "09012345678", CALLER[-8:]):
            assert needle not in k.decode() + value


def test_status_callback_folds_the_call_once(make_app: AppFactory, redis_url: str) -> None:
    """A finished call is counted in its campaign-day aggregate once, even if Twilio repeats the callback."""
    from rq import Queue, SimpleWorker

    app = make_app(OPEN)
    result = call(app, ["2"])
    assert result.requests[-1] == ("/voice/status", 204)
    again = post(app, "/voice/status", {**TWILIO, "CallSid": result.call_sid, "CallStatus": "completed"})
    assert again.status_code == 204
    client = redis.Redis.from_url(redis_url)
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
    agg = {k.decode(): int(v) for k, v in client.hgetall("ivr:agg:gw-2025:2025-05-03").items()}
    assert agg == {"calls": 1, "calls|under18": 1, "calls|under18|h03": 1, "answered|under18": 1, "answered|h03": 1,
                   "wait|under18|le30": 1,  # one wait round: under half a minute
                   "lang|ja": 1, "lang|ja|answered": 1,  # the published breakdown by language
                   "talk|under18|h03": 0, "talked|under18|h03": 1}  # a frozen clock: no time passed talking


def test_one_log_line_per_webhook_without_the_number(make_app: AppFactory) -> None:
    """Each webhook writes one canonical line with the call hash, step and decision; never the caller's number."""
    app = make_app(OPEN)
    with capture_logs(processors=[merge_contextvars]) as logs:
        result = call(app, ["1"])
    lines = [e for e in logs if e["event"] == "webhook"]
    assert [(e["step"], e["decision"]) for e in lines] == [
        ("incoming", "menu"), ("menu", "queue:tsunagari"), ("wait", "wait"), ("queue_done", "answered"),
        ("status", "status:completed")]
    assert len(result.requests) == len(lines)
    assert len({e["call"] for e in lines}) == 1 and lines[0]["call"] != result.call_sid
    text = json.dumps(logs, ensure_ascii=False)
    for needle in (CALLER, CALLER[1:], "09012345678", CALLER[-8:], result.call_sid):
        assert needle not in text


def test_metrics_count_calls_and_choices(make_app: AppFactory) -> None:
    """Operators see calls by window, choices by option and routes by outcome at /metrics."""
    app = make_app(OPEN)
    call(app, ["2"])
    call(app, ["7", "7", "7"])
    text = app.test_client().get("/metrics").get_data(as_text=True)
    for sample in ('ivr_calls_total{entry="other",window="open"} 2.0', 'ivr_menu_selections_total{option="under18"} 1.0',
                   'ivr_menu_selections_total{option="general"} 1.0', 'ivr_menu_bad_inputs_total{kind="wrong"} 3.0',
                   'ivr_routes_total{outcome="queued"} 2.0', 'ivr_menu_selections_total{option="disaster"} 0.0',
                   "ivr_clock_simulated 1.0"):
        assert sample in text, sample
    assert CALLER[1:] not in text


def test_readyz_reports_config_store_and_clock(make_app: AppFactory) -> None:
    """Readiness tells an operator with the admin token which config, which store, and which clock the service
    runs on (anyone else: booleans and a reason, tests/test_admin.py)."""
    app = make_app(OPEN, IVR_ADMIN_TOKEN="admin-token-for-tests")
    ready = app.test_client().get("/readyz", headers={"Authorization": "Bearer admin-token-for-tests"}).get_json()
    details = ready["details"]
    assert ready["ready"] is True and details["store"] == {"kind": "redis", "degraded": False}
    assert details["config"]["routing"].endswith("routing/routing.yaml")
    assert details["clock"]["simulated"] is True and details["clock"]["now"] == "2025-05-02T18:00:00+00:00"


def test_ivr_clock_setting_runs_on_from_the_given_instant(redis_url: str) -> None:
    """IVR_CLOCK starts the clock at that instant and lets it run; the offset is exposed as a metric."""
    from ivr.app import create_app

    app = create_app({"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": redis_url, "IVR_CLOCK": "2025-05-02T10:00:00+09:00"})
    clock = app.extensions["ivr.clock"].describe()
    assert clock["simulated"] is True and clock["frozen"] is False
    assert clock["now"].startswith("2025-05-02T01:00:0")
    result = call(app, ["1"])
    assert result.connected is not None
    text = app.test_client().get("/metrics").get_data(as_text=True)
    assert "ivr_clock_offset_seconds -" in text


def _folded(redis_url: str, day: str) -> dict[str, int]:
    """Run the queued counting jobs; the campaign day's aggregate."""
    from rq import Queue, SimpleWorker

    client = redis.Redis.from_url(redis_url)
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
    return {k.decode(): int(v) for k, v in client.hgetall(f"ivr:agg:gw-2025:{day}").items()}


class _StatusLater:
    """Twilio's requests for a call to one app, and its status callback to another whose clock reads later."""

    def __init__(self, during: object, after: object):
        self.during, self.after = InProcess(during), InProcess(after)

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
        """Hand the request to the app of its time."""
        return (self.after if url.endswith("/voice/status") else self.during).post(url, params, signature)


def test_a_call_across_midnight_counts_on_the_day_it_came_in(make_app: AppFactory, redis_url: str) -> None:
    """A call that comes in at 23:50 JST and ends after midnight is counted in its own day's 23:00 hour, not in the
    next day's (the status callback's day with the start's hour)."""
    transport = _StatusLater(make_app("2025-05-03T23:50:00+09:00"), make_app("2025-05-04T00:10:00+09:00"))
    result = StandIn(transport, TOKEN, BASE, keys=["2"], caller=CALLER).call("/voice/incoming")
    assert result.requests[-1] == ("/voice/status", 204)
    assert _folded(redis_url, "2025-05-04") == {}
    agg = _folded(redis_url, "2025-05-03")
    assert (agg["calls"], agg["calls|under18"], agg["calls|under18|h23"]) == (1, 1, 1)


def test_a_caller_who_leaves_in_the_japanese_menu_counts_as_japanese(make_app: AppFactory, redis_url: str) -> None:
    """A caller who hangs up while the top menu (Japanese) plays has no option and no language in their record yet:
    the breakdown by language counts them as `ja`, not `other`."""
    app = make_app(OPEN)
    assert post(app, "/voice/incoming", TWILIO).status_code == 200
    assert post(app, "/voice/status", {**TWILIO, "CallStatus": "completed"}).status_code == 204
    agg = _folded(redis_url, "2025-05-03")
    assert (agg["calls"], agg["lang|ja"], agg.get("lang|other", 0)) == (1, 1, 0), agg
