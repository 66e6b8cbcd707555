"""Regressions: mistakes in config files, unverified requests and the fallback never reach a caller as silence."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from twilio.request_validator import RequestValidator

from ivr.state.config import request_reload
from menus import load_menu
from routing import ConfigError
from tests.support import BASE, TOKEN, AppFactory, call

ROOT = Path(__file__).parents[1]
OPEN = "2025-05-03T03:00:00+09:00"


def menu_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (ROOT / "menus" / "menu.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "menu.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


def test_broken_placeholder_is_a_config_problem(tmp_path: Path) -> None:
    """'{key を押して' (a brace left open) is reported with its path, not raised as a crash."""
    path = menu_with(tmp_path, '    repeat_line: "もう一度お聞きになるときは、{key}を押してください。"',
                     '    repeat_line: "もう一度お聞きになるときは、{key を押してください。"')
    with pytest.raises(ConfigError) as e:
        load_menu(path)
    assert [p.path for p in e.value.problems] == ["prompts.ja.repeat_line"]
    assert "broken placeholder" in str(e.value)


def test_referral_without_its_number_is_refused(tmp_path: Path) -> None:
    """A referral prompt that forgot {number} would send callers away without a number to call."""
    path = menu_with(tmp_path, '    referral: "{name}、電話番号 {number} で相談できます。"',
                     '    referral: "{name}で相談できます。"')
    with pytest.raises(ConfigError) as e:
        load_menu(path)
    assert str(e.value) == (f"{path}: prompts.ja.referral: placeholders ['name']; this prompt takes "
                            "['name', 'number']")


def test_file_that_is_not_utf8_is_a_config_problem(tmp_path: Path) -> None:
    """A routing file saved in Shift_JIS is reported as not UTF-8, not raised."""
    path = tmp_path / "menu.yaml"
    path.write_bytes((ROOT / "menus" / "menu.yaml").read_text(encoding="utf-8").encode("shift_jis",
                                                                                       errors="replace"))
    with pytest.raises(ConfigError, match="not UTF-8 text; save the file as UTF-8"):
        load_menu(path)


def test_worker_boots_on_last_good_when_a_file_is_not_utf8(make_app: AppFactory, tmp_path: Path) -> None:
    """Any failure while loading (here, undecodable bytes) keeps the last good config serving."""
    menu = tmp_path / "menu.yaml"
    shutil.copyfile(ROOT / "menus" / "menu.yaml", menu)
    settings = {"IVR_MENU_FILE": str(menu), "IVR_RUNTIME_DIR": str(tmp_path / "runtime")}
    make_app(OPEN, **settings)
    menu.write_bytes(b"\xff\xfe broken")
    request_reload(tmp_path / "runtime")
    app = make_app(OPEN, **settings)
    assert call(app, ["1"]).connected.target == "queue general-tsunagari"  # type: ignore[union-attr]


def test_fallback_enqueue_has_a_wait_url_and_a_maximum(make_app: AppFactory) -> None:
    """The fallback queues the caller like any call: wait messages and rollover, never endless hold music."""
    path = "/voice/fallback"
    params = {"CallSid": "CA" + "d" * 32, "ErrorCode": "11200"}
    sig = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    body = make_app(OPEN).test_client().post(path, data=params, base_url=BASE,
                                             headers={"X-Twilio-Signature": sig}).get_data()
    enqueue = ET.fromstring(body).find("Enqueue")
    assert enqueue is not None and enqueue.text == "general-tsunagari"
    assert enqueue.get("waitUrl") == "/voice/wait?p=tsunagari&o=general&l=ja&s=0"
    assert enqueue.get("action") == "/voice/queue-done?q=general-tsunagari&p=tsunagari&o=general&l=ja&s=0"


def test_unreadable_unsigned_body_is_refused_not_answered(make_app: AppFactory) -> None:
    """A multipart body of too many fields with a made-up signature is refused (413: over the 200 fields), never
    answered with TwiML with partner contacts."""
    app = make_app(OPEN)
    data = {f"f{i}": "x" for i in range(1500)}
    resp = app.test_client().post("/voice/incoming", data=data, content_type="multipart/form-data",
                                  base_url=BASE, headers={"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"})
    assert resp.status_code == 413
    assert b"general-tsunagari" not in resp.get_data()


def test_configured_caller_id_when_the_dialled_number_is_not_e164(make_app: AppFactory) -> None:
    """Reached over SIP, the partner still sees the hotline's number (IVR_CALLER_ID), not the caller's."""
    app = make_app(OPEN, IVR_CALLER_ID="+81120494949")
    path = "/voice/menu?n=1"
    params = {"CallSid": "CA" + "e" * 32, "Digits": "6", "To": "sip:hotline@example.jp", "From": "+819012345678"}
    sig = RequestValidator(TOKEN).compute_signature(BASE + path, params)
    body = app.test_client().post(path, data=params, base_url=BASE, headers={"X-Twilio-Signature": sig}).get_data()
    dial = ET.fromstring(body).find("Dial")
    assert dial is not None and dial.get("callerId") == "+81120494949"


def test_rolling_back_a_config_is_audited(make_app: AppFactory, tmp_path: Path) -> None:
    """Going A -> B -> A writes an audit line for each change, the rollback included."""
    routing = tmp_path / "routing.yaml"
    original = (ROOT / "routing" / "routing.yaml").read_text(encoding="utf-8")
    routing.write_text(original, encoding="utf-8")
    app = make_app(OPEN, IVR_ROUTING_FILE=str(routing), IVR_ADMIN_TOKEN="t", IVR_RUNTIME_DIR=str(tmp_path / "rt"))
    headers = {"Authorization": "Bearer t"}
    with capture_logs() as logs:
        routing.write_text(original.replace("ring_timeout: 25", "ring_timeout: 30"), encoding="utf-8")
        assert app.test_client().post("/admin/reload", headers=headers).get_json()["result"] == "applied"
        routing.write_text(original, encoding="utf-8")
        assert app.test_client().post("/admin/reload", headers=headers).get_json()["result"] == "applied"
    audit = [e for e in logs if e["event"] == "config_applied"]
    assert [e["changes"] for e in audit] == [["partner hinata changed"], ["partner hinata changed"]]
    assert audit[0]["previous"] == audit[1]["hash"]
