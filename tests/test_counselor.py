"""The counsellors' line: each counsellor's own id and PIN, a lockout across calls and instances, the whisper before
the bridge, urgent callers first."""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
from pathlib import Path

import pytest
import redis
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from common.configfile import ConfigError
from common.facts import parse_instant
from ivr.cli import main
from ivr.state import handover
from ivr.tools.standin import CallResult, InProcess, StandIn
from routing.check import load_routing
from tests.support import BASE, CALLER, TOKEN, AppFactory, call, post_signed

ROOT = Path(__file__).parents[1]
EXAMPLE = ROOT / "ops" / "partners.example.yaml"  # counsellor 1001 (PIN 482193, from COUNSELLOR only), 1002 (730416)
OPEN = "2025-05-03T03:00:00+09:00"
COUNSELLOR = "+15005550010"
ASK_ID = "相談員の方ですね。相談員IDを押して、最後にシャープを押してください。"
ASK_PIN = "続けて、暗証番号を押して、最後にシャープを押してください。"
WRONG = "IDまたは暗証番号が違います。もう一度、相談員IDを押して、最後にシャープを押してください。"
THIRD_WRONG = "IDまたは暗証番号が3回違ったため、終了します。"
NOBODY_WAITING = "いま、お待ちの方はいません。次の方がつながるまで、このままお待ちください。"


def app_with_counsellors(make_app: AppFactory, at: str = OPEN, routing: str | None = None,
                         partners: Path = EXAMPLE):  # type: ignore[no-untyped-def]
    extra = {"IVR_ROUTING_FILE": routing} if routing else {}
    return make_app(at, IVR_PARTNERS_FILE=str(partners), **extra)


def counsellor_call(app, keys: list[str], number: str = COUNSELLOR, **kwargs) -> CallResult:  # type: ignore[no-untyped-def]
    return StandIn(InProcess(app), TOKEN, BASE, keys=keys, caller=number, called="+81120000000",
                   **kwargs).call("/counselor/incoming")


def later(at: str, seconds: int) -> str:
    return (parse_instant(at) + dt.timedelta(seconds=seconds)).isoformat()


def pass_time(redis_url: str, seconds: float) -> None:
    """Redis's login keys as they will be `seconds` later by Redis's clock (which the lockouts go by, not the app's):
    every wrong try's mark that much older, every key that much nearer its expiry, gone if it is past it."""
    client = redis.Redis.from_url(redis_url)
    for k in client.scan_iter("ivr:login-*"):
        if client.type(k) == b"zset":
            client.zadd(k, {m: score - seconds for m, score in client.zrange(k, 0, -1, withscores=True)})
        left = client.pttl(k) - int(seconds * 1000)
        if left > 0:
            client.pexpire(k, left)
        else:
            client.delete(k)


def logins(app) -> dict[tuple[str, str], float]:  # type: ignore[no-untyped-def]
    """ivr_counsellor_logins_total by (partner, result), leaving out the zeros."""
    metric = app.extensions["ivr.metrics"].counsellor_logins
    return {(s.labels["partner"], s.labels["result"]): s.value for m in metric.collect() for s in m.samples
            if s.name.endswith("_total") and s.value}


def test_right_id_and_pin_bridge_and_the_whisper_tells_who_is_next(make_app: AppFactory) -> None:
    """After id and PIN the counsellor hears who is next (option, language, minutes) and is bridged to them."""
    app = app_with_counsellors(make_app)
    waiting = StandIn(InProcess(app), TOKEN, BASE, caller=CALLER)
    first = waiting.call()  # silence x3: a caller put through to the general line
    app.extensions["ivr.store"].joined("general-tsunagari", first.call_sid)
    result = counsellor_call(app, ["1001", "482193", "-"])
    heard = result.heard()
    assert heard[:3] == [ASK_ID, ASK_PIN, "孤独や孤立に悩んでいる方、日本語、1分お待ちの方です。おつなぎします。"]
    assert [e.text for e in result.of("key")] == ["1001", "482193"]
    desk = result.of("dial")[0].target  # the counsellor's own queue, where the caller they took comes over
    assert desk.startswith("desk-") and len(desk) == 21
    assert [e.text for e in result.of("other")] == ["相談員につながります。"]
    assert result.connected is not None and result.connected.target == f"queue {desk}"
    assert heard[-2:] == ["続けて次の方とお話しするときは、1を押してください。終えるときは、電話をお切りください。",
                          "お疲れさまでした。終了します。"]
    assert logins(app) == {("tsunagari", "ok"): 1.0}


def test_a_wrong_id_a_wrong_pin_and_a_wrong_phone_sound_the_same(make_app: AppFactory) -> None:
    """Someone guessing cannot tell an id nobody has from a wrong PIN or a phone the counsellor does not use."""
    app = app_with_counsellors(make_app)
    unknown_id = counsellor_call(app, ["9999", "482193"], number="+819011110001")
    wrong_pin = counsellor_call(app, ["1001", "482194"], number="+819011110002")
    wrong_phone = counsellor_call(app, ["1001", "482193"], number="+819011110003")  # 1001 calls from COUNSELLOR only
    expected = [ASK_ID, ASK_PIN, WRONG, ASK_PIN, WRONG, ASK_PIN, THIRD_WRONG]
    assert unknown_id.heard() == wrong_pin.heard() == wrong_phone.heard() == expected
    assert [r.connected for r in (unknown_id, wrong_pin, wrong_phone)] == [None, None, None]
    assert logins(app) == {("unknown", "wrong"): 1.0, ("tsunagari", "wrong"): 2.0, ("unknown", "empty"): 6.0}


def test_a_wrong_id_answers_the_same_document_and_costs_the_same_check(make_app: AppFactory,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not even the TwiML or the work done tells an id nobody has from a wrong PIN or a locked-out login: the same
    bytes come back, and an unknown id is checked against a dummy scrypt hash."""
    import ivr.web.counselor as counselor
    from routing.pins import DUMMY_HASH, pin_matches

    checked: list[str] = []
    monkeypatch.setattr(counselor, "pin_matches", lambda stored, pin: checked.append(stored) or pin_matches(stored, pin))
    app = app_with_counsellors(make_app)
    transport = InProcess(app)

    def try_login(counsellor_id: str, pin: str, number: str) -> bytes:
        return post_signed(transport, f"{BASE}/counselor/pin?c={counsellor_id}&n=1",
                           {"CallSid": "CA" + "3" * 32, "From": number, "Digits": pin})[2]

    unknown = try_login("9999", "482193", COUNSELLOR)
    wrong_pin = try_login("1001", "482194", COUNSELLOR)
    for n in range(5):  # 1002 from another phone: five wrong tries lock it out
        try_login("1002", f"11122{n}", "+819022223333")
    locked = try_login("1002", "730416", "+819022223333")
    assert unknown == wrong_pin == locked
    assert b"/counselor/id?n=2" in unknown and "IDまたは暗証番号が違います" in unknown.decode()
    assert checked[:2] == [DUMMY_HASH, EXAMPLE.read_text(encoding="utf-8").split('pin_hash: "')[1].split('"')[0]]
    assert len(checked) == 7  # the locked-out try is refused before any PIN is checked


def test_a_counsellor_without_numbers_logs_in_from_any_phone(make_app: AppFactory) -> None:
    """Counsellor 1002 has no registered phone: the id and PIN alone let them in, from whatever phone they call."""
    app = app_with_counsellors(make_app)
    result = counsellor_call(app, ["1002", "730416"], number="+819099990000", dial_status="no-answer")
    assert result.heard()[:3] == [ASK_ID, ASK_PIN, NOBODY_WAITING]
    assert result.of("dial")[0].target == "general-tsunagari"


def test_three_wrong_tries_end_the_call_and_are_logged_by_partner_only(make_app: AppFactory) -> None:
    """Three wrong tries: told, the call ends; each is a log line by partner, with no id, PIN or number in any."""
    app = app_with_counsellors(make_app)
    with capture_logs(processors=[merge_contextvars]) as logs:
        result = counsellor_call(app, ["1001", "111111", "1001", "222222", "9999", "333333"])
    assert result.heard()[-1] == THIRD_WRONG and result.of("hangup") and result.connected is None
    refused = [{k: v for k, v in e.items() if k != "call"} for e in logs if e["event"] == "counsellor_login_refused"]
    assert refused == [{"event": "counsellor_login_refused", "partner": "tsunagari", "result": "wrong", "tries": 1,
                        "log_level": "warning"},
                       {"event": "counsellor_login_refused", "partner": "tsunagari", "result": "wrong", "tries": 2,
                        "log_level": "warning"},
                       {"event": "counsellor_login_refused", "partner": "unknown", "result": "wrong", "tries": 3,
                        "log_level": "warning"}]
    text = json.dumps(logs)
    assert [s for s in ("15005550010", "55550010", "111111", "222222", "333333") if s in text] == []
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'ivr_counsellor_logins_total{partner="tsunagari",result="wrong"} 2.0' in metrics
    assert 'ivr_counsellor_logins_total{partner="unknown",result="wrong"} 1.0' in metrics
    assert 'ivr_counsellor_logins_total{partner="sakura",result="locked"} 0.0' in metrics  # every partner, from 0


def brute_force(apps: list, keys_last_call: list[str]) -> list[CallResult]:  # type: ignore[type-arg]
    """40 wrong PINs for counsellor 1001 over 15 calls from their registered phone (3 a call, then 2 a call and a
    silence), the 15th call's last try being `keys_last_call`; calls go to the apps in turn."""
    scripts = [["1001", f"{n:06d}", "1001", f"{n + 1:06d}", "1001", f"{n + 2:06d}"] for n in range(100000, 100030, 3)]
    scripts += [["1001", f"{n:06d}", "1001", f"{n + 1:06d}", "-", "-"] for n in range(200000, 200008, 2)]
    scripts.append(["1001", "300000", "1001", "300001", *keys_last_call])
    assert len(scripts) == 15 and sum(1 for s in scripts for k in s[1::2] if k not in ("-", "482193")) == 40
    return [counsellor_call(apps[i % len(apps)], keys) for i, keys in enumerate(scripts)]


@pytest.mark.parametrize("instances", [1, 2], ids=["one-instance", "two-instances-one-redis"])
def test_forty_wrong_pins_over_fifteen_calls_lock_the_counsellor_out_until_the_window_ends(
        make_app: AppFactory, redis_url: str, instances: int) -> None:
    """The attack review's brute force: 40 wrong PINs over 15 calls, then the right one, is refused (on any instance,
    in the same words as a wrong PIN) until 15 minutes after the fifth wrong try; then the counsellor gets in."""
    apps = [app_with_counsellors(make_app) for _ in range(instances)]
    calls = brute_force(apps, ["1001", "482193"])
    assert [c.connected for c in calls] == [None] * 15 and [len(c.of("dial")) for c in calls] == [0] * 15
    assert calls[-1].heard() == [ASK_ID, ASK_PIN, WRONG, ASK_PIN, WRONG, ASK_PIN, THIRD_WRONG]
    counted: dict[tuple[str, str], float] = {}
    for app in apps:
        for k, v in logins(app).items():
            counted[k] = counted.get(k, 0) + v
    assert counted == {("tsunagari", "wrong"): 5.0, ("tsunagari", "locked"): 36.0, ("unknown", "empty"): 4.0}
    lockouts = {(s.labels["locked"], s.value) for app in apps
                for m in app.extensions["ivr.metrics"].counsellor_lockouts.collect() for s in m.samples
                if s.name.endswith("_total") and s.labels["partner"] == "tsunagari" and s.value}
    assert lockouts == {("id", 1.0), ("number", 1.0)}

    pass_time(redis_url, 15 * 60 - 60)  # a minute before the lock ends by Redis's clock (the calls take seconds)
    almost = counsellor_call(apps[0], ["1001", "482193"])
    assert almost.heard()[:3] == [ASK_ID, ASK_PIN, WRONG] and almost.connected is None
    pass_time(redis_url, 60)
    after = counsellor_call(apps[-1], ["1001", "482193"], dial_status="no-answer")
    assert after.heard()[:3] == [ASK_ID, ASK_PIN, NOBODY_WAITING]
    assert after.of("dial")[0].target == "general-tsunagari"


def test_a_locked_out_phone_is_refused_for_every_id(make_app: AppFactory) -> None:
    """A phone that guessed five times cannot go on with another counsellor's id, even the right PIN of it."""
    app = app_with_counsellors(make_app)
    counsellor_call(app, ["1001", "000001", "1001", "000002", "9999", "000003"], number="+819088887777")
    counsellor_call(app, ["8888", "000004", "7777", "000005"], number="+819088887777")
    refused = counsellor_call(app, ["1002", "730416"], number="+819088887777")
    assert refused.heard()[:3] == [ASK_ID, ASK_PIN, WRONG] and refused.connected is None
    elsewhere = counsellor_call(app, ["1002", "730416"], number="+819066665555", dial_status="no-answer")
    assert elsewhere.heard()[2] == NOBODY_WAITING


@pytest.mark.parametrize("withheld", ["anonymous", "+266696687", ""])
def test_guesses_from_a_withheld_number_do_not_lock_out_counsellors_who_withhold_theirs(
        make_app: AppFactory, withheld: str) -> None:
    """A counsellor with caller ID withheld still gets in after someone else's guesses from a withheld number."""
    app = app_with_counsellors(make_app)
    counsellor_call(app, ["1001", "000001", "8888", "000002", "9999", "000003"], number=withheld)
    counsellor_call(app, ["7777", "000004", "6666", "000005"], number=withheld)
    counsellor = counsellor_call(app, ["1002", "730416"], number=withheld, dial_status="no-answer")
    assert counsellor.heard()[:3] == [ASK_ID, ASK_PIN, NOBODY_WAITING]
    assert counsellor.of("dial")[0].target == "general-tsunagari"


def test_without_redis_nobody_logs_in(make_app: AppFactory, own_redis) -> None:  # type: ignore[no-untyped-def]
    """With Redis down the right id and PIN are refused (no lockout could be kept), told so, logged and counted."""
    app = make_app(OPEN, IVR_PARTNERS_FILE=str(EXAMPLE), REDIS_URL=own_redis.url)
    own_redis.stop()
    with capture_logs(processors=[merge_contextvars]) as logs:
        result = counsellor_call(app, ["1001", "482193"])
    assert result.heard() == [ASK_ID, ASK_PIN, "ただいま、ログインを確かめられません。お手数ですが、運営事務局にご連絡ください。"]
    assert result.of("hangup") and result.of("dial") == []
    assert [e["reason"] for e in logs if e["event"] == "counsellor_login_store_down"] == ["ConnectionError"]
    assert [(e["partner"], e["log_level"]) for e in logs if e["event"] == "counsellor_login_refused"] == [
        ("tsunagari", "error")]
    assert logins(app) == {("tsunagari", "unavailable"): 1.0}
    again = counsellor_call(app, ["1001", "482193"])  # the store now backs off: still nobody
    assert again.heard()[-1] == "ただいま、ログインを確かめられません。お手数ですが、運営事務局にご連絡ください。"


def test_a_login_is_bound_to_its_call(make_app: AppFactory) -> None:
    """A step after the login, replayed for another call or without its tag, ends that call: it never takes a
    caller, even though Twilio signed it."""
    app = app_with_counsellors(make_app)
    transport = InProcess(app)
    login = post_signed(transport, f"{BASE}/counselor/pin?c=1001&n=1",
                        {"CallSid": "CA" + "1" * 32, "From": COUNSELLOR, "Digits": "482193"})[2].decode()
    action = login.split('<Dial action="')[1].split('"')[0].replace("&amp;", "&")
    assert action.startswith("/counselor/after?i=0&c=1001&k=") and len(action.split("k=")[1]) == 32
    dial_ended = {"DialCallStatus": "no-answer", "DialCallDuration": "0"}
    same = post_signed(transport, BASE + action, {"CallSid": "CA" + "1" * 32, **dial_ended})[2].decode()
    other = post_signed(transport, BASE + action, {"CallSid": "CA" + "2" * 32, **dial_ended})[2].decode()
    untagged = post_signed(transport, f"{BASE}/counselor/next?c=1001", {"CallSid": "CA" + "1" * 32, "Digits": "1"})
    assert "<Dial" in same and "general-tsunagari" in same
    bye = "お疲れさまでした。終了します。"
    assert ("<Dial" in other, bye in other) == (False, True)
    assert ("<Dial" in untagged[2].decode(), bye in untagged[2].decode()) == (False, True)


def test_ivr_counsellor_add_writes_a_hash_and_the_pin_logs_in(make_app: AppFactory, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """An operator adds a counsellor with `ivr counsellor add`; only the PIN's hash is written, comments stay, and
    the counsellor logs in with that PIN; `reset` gives a new PIN and the old one stops working."""
    partners = tmp_path / "partners.yaml"
    shutil.copy(EXAMPLE, partners)
    partners.chmod(0o644)  # as a checkout or a copy leaves it: written back 0600
    monkeypatch.setattr("sys.stdin", io.StringIO("615243\n"))
    assert main(["counsellor", "add", "--partners", str(partners), "--partner", "tsunagari", "--id", "2001",
                 "--pin-stdin"]) == 0
    assert capsys.readouterr().out == f"counsellor 2001 (tsunagari) added to {partners}\n"
    text = partners.read_text(encoding="utf-8")
    assert "615243" not in text and "# EXAMPLE ONLY, for rehearsals" in text
    assert text.count('- id: "2001"\n    partner: tsunagari\n    pin_hash: "scrypt$16384$8$1$') == 1
    assert oct(partners.stat().st_mode & 0o777) == "0o600"
    app = app_with_counsellors(make_app, partners=partners)
    ok = counsellor_call(app, ["2001", "615243"], number="+819055554444", dial_status="no-answer")
    assert ok.heard()[2] == NOBODY_WAITING

    monkeypatch.setattr("sys.stdin", io.StringIO("590712\n"))
    assert main(["counsellor", "reset", "--partners", str(partners), "--id", "2001", "--pin-stdin"]) == 0
    app = app_with_counsellors(make_app, later(OPEN, 60), partners=partners)
    assert counsellor_call(app, ["2001", "615243"]).heard()[2] == WRONG
    assert counsellor_call(app, ["2001", "590712"], dial_status="no-answer").heard()[2] == NOBODY_WAITING


def test_ivr_counsellor_add_for_a_partner_nobody_has_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """An operator who mistypes the partner is told so, naming their partners file, and the file is left as it was."""
    partners = tmp_path / "partners.yaml"
    shutil.copy(EXAMPLE, partners)
    monkeypatch.setattr("sys.stdin", io.StringIO("615243\n"))
    assert main(["counsellor", "add", "--partners", str(partners), "--partner", "tsunagri", "--id", "2001",
                 "--pin-stdin"]) == 1
    assert capsys.readouterr().err == (
        f"{partners}: counsellors[2].partner: no partner 'tsunagri' in {ROOT / 'routing' / 'routing.yaml'}; allowed: "
        "tsunagari, aozora, kodomo, worldbridge, niji, sakura, hinata, yorube, hinagiku\n")
    assert partners.read_bytes() == EXAMPLE.read_bytes() and sorted(p.name for p in tmp_path.iterdir()) == [
        "partners.yaml"]


@pytest.mark.parametrize(("pin", "why"), [
    ("48219", "a PIN is 6 to 12 digits (this one has 5)"),
    ("777777", "a PIN of one digit repeated is the first one guessed"),
    ("345678", "a PIN that runs up or down the keypad (123456, 987654) is among the first guessed"),
    ("48a193", "a PIN is digits only (0-9)"),
])
def test_a_weak_pin_is_refused_and_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str], pin: str, why: str) -> None:
    """An operator typing a short or guessable PIN is told why, and the partners file is left as it was."""
    partners = tmp_path / "partners.yaml"
    shutil.copy(EXAMPLE, partners)
    before = partners.read_bytes()
    monkeypatch.setattr("sys.stdin", io.StringIO(pin + "\n"))
    assert main(["counsellor", "reset", "--partners", str(partners), "--id", "1002", "--pin-stdin"]) == 2
    assert capsys.readouterr().err == f"ivr counsellor reset: {why}; nothing was written\n"
    assert partners.read_bytes() == before


def test_a_pin_in_clear_is_refused_naming_file_and_path(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A partners file (or routing file) with a PIN written in clear does not load: the operator is told where and
    what to do, and the PIN is not repeated."""
    partners = tmp_path / "partners.yaml"
    partners.write_text('counsellors:\n  - id: "1003"\n    partner: tsunagari\n    pin: "482193"\n', encoding="utf-8")
    message = ("a PIN is never kept in clear: delete this line (and give the counsellor an `id` if they have none), "
               "choose a new PIN, since this one has been written down, and set it with `ivr counsellor reset --id "
               "<id>`, which writes pin_hash")
    with pytest.raises(ConfigError) as e:
        load_routing(ROOT / "routing" / "routing.yaml", partners_file=partners)
    assert str(e.value) == (f"{partners}: counsellors[0].pin_hash: required key is missing\n"
                            f"{partners}: counsellors[0].pin: Value error, {message}")
    monkeypatch.setenv("IVR_PARTNERS_FILE", str(partners))
    assert main(["config", "check"]) == 1
    err = capsys.readouterr().err
    assert f"{partners}: counsellors[0].pin: Value error, a PIN is never kept in clear" in err and "482193" not in err

    routing = tmp_path / "routing.yaml"
    routing.write_text((ROOT / "routing" / "routing.yaml").read_text(encoding="utf-8") + 'counsellors:\n  - id: "1004"'
                       '\n    partner: sakura\n    pin: "482193"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_routing(routing)
    assert str(e.value).splitlines()[-1] == f"{routing}: counsellors[0].pin: Value error, {message}"


def test_counsellors_may_also_be_listed_in_the_routing_file_with_unique_ids(tmp_path: Path) -> None:
    """`counsellors:` in the routing file works as in the partners file, and an id used in both is refused."""
    hashed = EXAMPLE.read_text(encoding="utf-8").split('pin_hash: "')[2].split('"')[0]  # 1002's
    routing = tmp_path / "routing.yaml"
    routing.write_text((ROOT / "routing" / "routing.yaml").read_text(encoding="utf-8") + 'counsellors:\n  - id: "1002"'
                       f'\n    partner: sakura\n    pin_hash: "{hashed}"\n', encoding="utf-8")
    assert load_routing(routing).counsellor("1002").partner == "sakura"  # type: ignore[union-attr]
    with pytest.raises(ConfigError) as e:
        load_routing(routing, partners_file=EXAMPLE)
    assert str(e.value) == (f"{EXAMPLE}: counsellors[1].id: counsellor id '1002' is already used in {routing}; "
                            "every counsellor has their own id")


def test_foreign_caller_is_announced_with_their_language(make_app: AppFactory) -> None:
    """A Portuguese-speaking caller is announced as ポルトガル語 and hears the connection in Portuguese."""
    app = app_with_counsellors(make_app)
    result = call(app, ["3", "5"], queue_result="hangup")
    app.extensions["ivr.store"].joined("general-tsunagari", result.call_sid)
    bridged = counsellor_call(app, ["1001", "482193", "-"])
    assert bridged.heard()[2] == "外国語で相談したい方、ポルトガル語、1分お待ちの方です。おつなぎします。"
    assert [e.text for e in bridged.of("other")] == ["Você está sendo conectado agora."]


def test_urgent_callers_are_taken_first(make_app: AppFactory, tmp_path: Path) -> None:
    """A caller on an urgent option is bridged before one who has waited longer on an ordinary option."""
    text = (ROOT / "routing" / "routing.yaml").read_text(encoding="utf-8")
    old = ('    women:\n      shifts: [{partner: sakura, from: "00:00", to: "24:00"}]\n'
           '      referrals: [dv-plus, yorisoi]\n    disaster:')
    assert old in text
    routing = tmp_path / "routing.yaml"
    routing.write_text(text.replace(old, old.replace("partner: sakura", "partner: tsunagari").replace(
        "      referrals: [dv-plus, yorisoi]\n", "      referrals: [dv-plus, yorisoi]\n      urgent: true\n")),
        encoding="utf-8")
    app = app_with_counsellors(make_app, routing=str(routing))
    ordinary = call(app, ["1"], queue_result="hangup")
    urgent = call(app, ["5"], queue_result="hangup")
    assert [e.target for e in urgent.of("enqueue")] == ["general-tsunagari-urgent"]
    store = app.extensions["ivr.store"]
    store.joined("general-tsunagari", ordinary.call_sid)
    store.joined("general-tsunagari-urgent", urgent.call_sid)
    bridged = counsellor_call(app, ["1001", "482193", "-"])
    assert bridged.heard()[2].startswith("女性の方、日本語、")
    desk = bridged.of("dial")[0].target  # the urgent caller, and only they, comes over to the counsellor's desk
    assert desk.startswith("desk-")
    assert (handover.desk_of(store, urgent.call_sid), handover.desk_of(store, ordinary.call_sid)) == (desk, None)


def test_empty_queue_is_said_and_the_counsellor_waits_on_it(make_app: AppFactory) -> None:
    """With nobody waiting the counsellor is told so and waits on the queue for the next caller."""
    app = app_with_counsellors(make_app)
    result = counsellor_call(app, ["1001", "482193"], dial_status="no-answer")
    assert result.heard()[2] == NOBODY_WAITING
    assert result.heard()[-1] == "お疲れさまでした。終了します。"
    assert len(result.of("dial")) == 10 and result.connected is None


def test_ivr_call_counselor_rehearses_a_login(make_app: AppFactory, redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr call --counselor` walks an operator through the id, the PIN and the bridge, as the README shows."""
    monkeypatch.setenv("IVR_PARTNERS_FILE", str(EXAMPLE))
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["call", "--counselor", "--from", COUNSELLOR, "--at", OPEN, "--press", "1001", "482193", "-"]) == 0
    out = capsys.readouterr().out
    assert f"  [say ja-JP] {ASK_ID}\n  [key] caller presses 1001\n  [say ja-JP] {ASK_PIN}\n" in out
    assert "=> The caller reached a person: queue general-tsunagari (completed)." in out


def test_a_partners_file_others_can_read_is_named_in_the_log(tmp_path: Path) -> None:
    """Counsellors' PIN hashes in a file anyone on the host can read could be guessed offline: the operator is told."""
    from structlog.testing import capture_logs

    from ivr.state.config import load

    partners = tmp_path / "partners.yaml"
    shutil.copy(EXAMPLE, partners)
    for mode, warned in ((0o644, True), (0o600, False)):
        partners.chmod(mode)
        with capture_logs() as logs:
            load(ROOT / "menus" / "menu.yaml", ROOT / "routing" / "routing.yaml", partners)
        assert (mode, [e["file"] for e in logs if e["event"] == "partners_file_readable_by_others"]) == (
            mode, [str(partners)] if warned else [])
