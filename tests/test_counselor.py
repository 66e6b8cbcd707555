"""The counsellors' line: registered phone and PIN, the whisper before the bridge, urgent callers first."""

from __future__ import annotations

import json
from pathlib import Path

from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from ivr.tools.standin import InProcess, StandIn
from tests.support import BASE, CALLER, TOKEN, AppFactory, call

ROOT = Path(__file__).parents[1]
OPEN = "2025-05-03T03:00:00+09:00"
COUNSELLOR = "+15005550010"
PARTNERS = f'counsellors:\n  - partner: tsunagari\n    numbers: ["{COUNSELLOR}"]\n    pin: "482193"\n'


def app_with_counsellors(make_app: AppFactory, tmp_path: Path, routing: str | None = None):  # type: ignore[no-untyped-def]
    partners = tmp_path / "partners.yaml"
    partners.write_text(PARTNERS, encoding="utf-8")
    extra = {"IVR_ROUTING_FILE": routing} if routing else {}
    return make_app(OPEN, IVR_PARTNERS_FILE=str(partners), **extra)


def counsellor_call(app, keys: list[str], number: str = COUNSELLOR, **kwargs):  # type: ignore[no-untyped-def]
    return StandIn(InProcess(app), TOKEN, BASE, keys=keys, caller=number, called="+81120000000",
                   **kwargs).call("/counselor/incoming")


def test_unknown_number_is_told_and_the_line_ends(make_app: AppFactory, tmp_path: Path) -> None:
    """A phone not registered for any partner hears why and is hung up on; the number is not logged."""
    app = app_with_counsellors(make_app, tmp_path)
    with capture_logs(processors=[merge_contextvars]) as logs:
        result = counsellor_call(app, [], number="+819011112222")
    assert result.heard() == ["この電話番号は、相談員として登録されていません。お問い合わせは、運営事務局までお願いします。"]
    assert result.of("hangup") and result.connected is None
    assert "11112222" not in json.dumps(logs)


def test_three_wrong_pins_end_the_call_and_are_counted(make_app: AppFactory, tmp_path: Path) -> None:
    """Three wrong PINs: told, the call ends, logged and counted by partner, never by number."""
    app = app_with_counsellors(make_app, tmp_path)
    with capture_logs(processors=[merge_contextvars]) as logs:
        result = counsellor_call(app, ["1111", "2222", "3333"])
    assert result.heard().count("暗証番号が違います。もう一度押してください。") == 2
    assert result.heard()[-1] == "暗証番号が3回違ったため、終了します。"
    assert [e["partner"] for e in logs if e["event"] == "counsellor_pin_locked"] == ["tsunagari"]
    assert COUNSELLOR[1:] not in json.dumps(logs) and COUNSELLOR[-8:] not in json.dumps(logs)
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'ivr_counsellor_logins_total{result="wrong_pin"} 3.0' in metrics
    assert 'ivr_counsellor_logins_total{result="locked"} 1.0' in metrics


def test_whisper_tells_option_language_and_wait_then_bridges(make_app: AppFactory, tmp_path: Path) -> None:
    """After the PIN the counsellor hears who is next (option, language, minutes) and is bridged to them."""
    app = app_with_counsellors(make_app, tmp_path)
    waiting = StandIn(InProcess(app), TOKEN, BASE, caller=CALLER)
    first = waiting.call()  # silence x3: a caller put through to the general line
    store = app.extensions["ivr.store"]
    store.joined("general-tsunagari", first.call_sid)
    result = counsellor_call(app, ["482193", "-"])
    heard = result.heard()
    assert heard[1] == "孤独や孤立に悩んでいる方、日本語、1分お待ちの方です。おつなぎします。"
    dial = result.of("dial")[0]
    assert dial.target == "general-tsunagari"
    assert [e.text for e in result.of("other")] == ["相談員につながります。"]
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"
    assert heard[-2:] == ["続けて次の方とお話しするときは、1を押してください。終えるときは、電話をお切りください。",
                          "お疲れさまでした。終了します。"]


def test_foreign_caller_is_announced_with_their_language(make_app: AppFactory, tmp_path: Path) -> None:
    """A Portuguese-speaking caller is announced as ポルトガル語 and hears the connection in Portuguese."""
    app = app_with_counsellors(make_app, tmp_path)
    result = call(app, ["3", "5"], queue_result="hangup")
    app.extensions["ivr.store"].joined("general-tsunagari", result.call_sid)
    bridged = counsellor_call(app, ["482193", "-"])
    assert bridged.heard()[1] == "外国語で相談したい方、ポルトガル語、1分お待ちの方です。おつなぎします。"
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
    app = app_with_counsellors(make_app, tmp_path, str(routing))
    ordinary = call(app, ["1"], queue_result="hangup")
    urgent = call(app, ["5"], queue_result="hangup")
    assert [e.target for e in urgent.of("enqueue")] == ["general-tsunagari-urgent"]
    store = app.extensions["ivr.store"]
    store.joined("general-tsunagari", ordinary.call_sid)
    store.joined("general-tsunagari-urgent", urgent.call_sid)
    bridged = counsellor_call(app, ["482193", "-"])
    assert bridged.heard()[1].startswith("女性の方、日本語、")
    assert bridged.of("dial")[0].target == "general-tsunagari-urgent"


def test_empty_queue_is_said_and_the_counsellor_waits_on_it(make_app: AppFactory, tmp_path: Path) -> None:
    """With nobody waiting the counsellor is told so and waits on the queue for the next caller."""
    app = app_with_counsellors(make_app, tmp_path)
    result = counsellor_call(app, ["482193"], dial_status="no-answer")
    assert result.heard()[1] == "いま、お待ちの方はいません。次の方がつながるまで、このままお待ちください。"
    assert result.heard()[-1] == "お疲れさまでした。終了します。"
    assert len(result.of("dial")) == 10 and result.connected is None
