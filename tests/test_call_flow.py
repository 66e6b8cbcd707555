"""Whole calls through the Twilio stand-in, against the app on a real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.tools.standin import CallResult, InProcess, StandIn
from tests.support import BASE, CALLER, TOKEN, AppFactory, call

OPEN = "2025-05-03T03:00:00+09:00"  # inside GW 2025, a Saturday night


@pytest.mark.parametrize(("keys", "target"), [
    (["1"], "queue general-tsunagari"),
    (["2"], "queue under18-kodomo"),
    (["3", "1"], "queue foreign-worldbridge"),
    (["4"], "queue gender-niji"),
    (["5"], "queue women-sakura"),
    (["6"], "phone +15005550006"),
])
def test_each_key_reaches_its_partner(make_app: AppFactory, keys: list[str], target: str) -> None:
    """At 03:00 on 3 May 2025 each of keys 1-6 puts the caller through to that option's partner."""
    result = call(make_app(OPEN), keys)
    assert result.connected is not None
    assert result.connected.target == target
    assert not result.fallback_used


def test_phone_partner_sees_the_hotline_number_not_the_caller(make_app: AppFactory) -> None:
    """The <Dial> to a phone partner presents the hotline's own number as caller ID, never the caller's."""
    s = StandIn(InProcess(make_app(OPEN)), TOKEN, BASE, caller=CALLER)
    status, _, body = s.request(CallResult("CA" + "1" * 32), f"{BASE}/voice/menu?n=1", {"Digits": "6"})
    assert status == 200
    assert b'<Dial action="/voice/dial-done?p=hinata&amp;o=disaster&amp;l=ja&amp;s=0" callerId="+81120494949"' in body
    assert CALLER.encode() not in body


def test_one_second_before_opening_is_closed(make_app: AppFactory) -> None:
    """At 09:59:59 on 2 May 2025 the caller hears the closed message, 110/119, when it opens, and a line open now."""
    result = call(make_app("2025-05-02T09:59:59+09:00"), ["1"])
    heard = result.heard()
    assert heard[:3] == ["ただいま、孤独・孤立相談ダイヤルは受付時間外です。", "命の危険があるときは、110番か119番に電話してください。",
                         "次の受付は、5月2日、金曜日の午前10時からです。"]
    assert "いのちSOS、電話番号 0120-061-338 で相談できます。" in heard
    assert "It next opens on Friday 2 May at 10 a.m., Japan time." in heard
    assert result.of("enqueue") == [] and result.of("key") == []
    assert result.of("hangup") and not result.stranded


def test_opening_second_is_open(make_app: AppFactory) -> None:
    """At 10:00:00 on 2 May 2025 the menu is offered and key 1 reaches the general line."""
    result = call(make_app("2025-05-02T10:00:00+09:00"), ["1"])
    assert result.heard()[0] == "こちらは、孤独・孤立相談ダイヤルです。お電話ありがとうございます。"
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_closed_message_names_only_lines_open_now(make_app: AppFactory) -> None:
    """On a Tuesday at 03:00 #いのちSOS is closed, so the caller is not sent there; よりそい is open."""
    text = call(make_app("2026-11-24T03:00:00+09:00")).text
    assert "よりそいホットライン、電話番号 0120-279-338 で相談できます。" in text
    assert "でも相談" not in text  # #9999 itself is closed: no "also"
    assert "いのちSOS" not in text
    assert "次の受付は、12月25日、金曜日の午前9時からの予定です。" in text  # provisional: 予定


def test_wrong_keys_end_at_the_general_line(make_app: AppFactory) -> None:
    """Three wrong keys: the caller is told each time, then put through to the general line."""
    result = call(make_app(OPEN), ["7", "8", "#"])
    assert result.heard().count("その番号は選べません。") == 2
    assert "相談員におつなぎします。" in result.heard()
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_silence_ends_at_the_general_line(make_app: AppFactory) -> None:
    """A caller who presses nothing is never hung up on: after three silences, the general line."""
    result = call(make_app(OPEN), [])
    assert len(result.of("silence")) == 3
    assert result.heard().count("番号が押されませんでした。") == 3
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_repeat_key_plays_the_options_again(make_app: AppFactory) -> None:
    """Key 9 repeats the options without counting as a mistake."""
    result = call(make_app(OPEN), ["9", "9", "9", "5"])
    assert result.heard().count("女性の方は、5を押してください。") == 4
    assert result.connected is not None and result.connected.target == "queue women-sakura"


def test_foreign_language_caller_hears_their_language(make_app: AppFactory) -> None:
    """Key 3 then 2: the 110/119 notice first, then the rest of the call in Mandarin with a Mandarin voice."""
    result = call(make_app(OPEN), ["3", "2"])
    assert "需要中文服务，请按2。" in result.heard("cmn-CN")
    heard = result.heard("cmn-CN")
    assert heard[1:5] == ["遇到紧急情况，请拨打110报警，或拨打119呼叫消防和救护车。", "我们将为您转接咨询员，请不要挂断。",
                          "咨询员正在接听其他来电。请不要挂断，我们会按顺序为您转接。", "您现在排在第1位。"]
    assert heard[-1] == "感谢您的来电。"
    assert {e.voice for e in result.of("say") if e.lang == "cmn-CN"} == {"Polly.Zhiyu-Neural"}
    assert result.connected is not None and result.connected.target == "queue foreign-worldbridge"


def test_language_choice_gives_up_in_english(make_app: AppFactory) -> None:
    """A caller who asked for another language but cannot choose one reaches the foreign-language line in English."""
    result = call(make_app(OPEN), ["3", "-", "-", "-"])
    assert "We will connect you with a counsellor. Please stay on the line." in result.heard("en")
    assert result.connected is not None and result.connected.target == "queue foreign-worldbridge"


def test_under18_caller_hears_plain_words_while_waiting(make_app: AppFactory) -> None:
    """The under-18 path keeps plain words through the wait."""
    result = call(make_app(OPEN), ["2"])
    assert "いま、ほかの ひとと おはなし しているよ。じゅんばんに つなぐから、きらずに まっててね。" in result.heard()
    assert result.heard()[-1] == "でんわ してくれて ありがとう。"


def test_every_say_has_language_and_voice(make_app: AppFactory) -> None:
    """Every <Say> names its language and a voice for it."""
    result = call(make_app(OPEN), ["3", "4"])
    says = result.of("say")
    assert says and all(e.lang and e.voice for e in says)
    assert {e.voice for e in says if e.lang == "ja-JP"} == {"Polly.Tomoko-Neural"}


@pytest.mark.parametrize("queue_result", ["queue-full", "error", "system-error", "leave", "surprise-value"])
def test_queue_that_cannot_take_the_caller_rolls_over(make_app: AppFactory, queue_result: str) -> None:
    """queue-full, errors and unknown results send the caller down the chain, ending at open referral lines."""
    result = call(make_app(OPEN), ["5"], queue_result=queue_result)
    assert [e.target for e in result.of("enqueue")] == ["women-sakura", "general-tsunagari", "general-aozora"]
    heard = result.heard()
    assert "ただいま、つながりにくくなっています。別の相談窓口におつなぎします。" in heard
    assert "DV相談プラス、電話番号 0120-279-889 で相談できます。" in heard
    assert "時間をおいて、もう一度おかけください。" in heard
    assert heard[-2:] == ["命の危険があるときは、110番か119番に電話してください。", "お電話ありがとうございました。"]
    assert not result.stranded


@pytest.mark.parametrize("dial_status", ["no-answer", "busy", "failed"])
def test_phone_partner_no_answer_goes_to_the_general_line(make_app: AppFactory, dial_status: str) -> None:
    """A disaster-line partner that does not answer: the caller is put through to the general line."""
    result = call(make_app(OPEN), ["6"], dial_status=dial_status)
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_caller_hanging_up_in_queue_ends_quietly(make_app: AppFactory) -> None:
    """When the caller hangs up while waiting, nothing more is played."""
    result = call(make_app(OPEN), ["1"], queue_result="hangup")
    assert result.of("hangup") and result.connected is None


def test_withheld_number_is_let_through(make_app: AppFactory) -> None:
    """A withheld caller ID (anonymous or Twilio's +266696687) is never refused."""
    for caller in ("anonymous", "+266696687", ""):
        result = call(make_app(OPEN), ["1"], caller=caller)
        assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_menu_speaks_only_options_open_now(make_app: AppFactory) -> None:
    """At 09:00 on 26 Dec 2026 the under-18 and gender lines are not staffed, so the menu does not offer them."""
    result = call(make_app("2026-12-26T09:00:00+09:00"), ["1"])
    assert result.heard()[2:9] == [
        "孤独や孤立に悩んでいる方は、1を押してください。", "外国語で相談したい方は、3を押してください。",
        "For help in English and other languages, press 3.", "やさしい にほんごで はなしたい ひとも、3を おして ください。",
        "女性の方は、5を押してください。",
        "被災していて相談したい方は、6を押してください。", "もう一度お聞きになるときは、9を押してください。"]


def test_pressing_a_closed_option_is_explained_then_general(make_app: AppFactory) -> None:
    """A child who presses 2 while the under-18 line is closed is told so in plain words and put through."""
    result = call(make_app("2026-12-26T09:00:00+09:00"), ["2"])
    assert "18さいまでの ひとの まどぐちは、いま おやすみだよ。ほかの そうだんいんに つなぐね。" in result.heard()
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_foreign_option_closed_is_explained_in_english_too(make_app: AppFactory, tmp_path: Path) -> None:
    """At 21:00 the foreign-language line has closed and (here) no interpreter is on the general line: key 3 is
    explained in Japanese and English, with 110/119 in English."""
    text = (Path(__file__).parents[1] / "routing" / "routing.yaml").read_text(encoding="utf-8")
    assert "    interpreter: true" in text
    routing = tmp_path / "routing.yaml"
    routing.write_text(text.replace("    interpreter: true", "    interpreter: false"), encoding="utf-8")
    result = call(make_app("2026-12-26T21:00:00+09:00", IVR_ROUTING_FILE=str(routing)), ["3"])
    assert result.heard("en")[-2:] == [
        "Help in other languages is not available at this hour. We will connect you with a counsellor.",
        "In an emergency, call 110 for the police, or 119 for fire and ambulance."]
    assert result.of("key")[0].text == "3" and len(result.of("key")) == 1  # no language menu
    assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_new_year_evening_offers_the_gender_line_past_midnight(make_app: AppFactory) -> None:
    """At 01:30 the gender-identity line (16:00-02:00) is still offered and answers key 4."""
    result = call(make_app("2026-12-27T01:30:00+09:00"), ["4"])
    assert "性別の違和や同性愛に関して相談したい方は、4を押してください。" in result.heard()
    assert result.connected is not None and result.connected.target == "queue gender-niji"


def test_trial_campaign_speaks_its_own_eight_options(make_app: AppFactory) -> None:
    """In the July 2022 trial, key 3 was 死にたいほどつらい and key 9 the general line: the layout follows the campaign."""
    result = call(make_app("2022-07-08T12:00:00+09:00"), ["3"])
    heard = result.heard()
    assert "死にたいほどつらい気持ちの方は、3を押してください。" in heard
    assert "孤独や孤立に悩んでいる方は、9を押してください。" in heard
    assert "もう一度お聞きになるときは、0を押してください。" in heard
    assert len([h for h in heard if h.endswith(("を押してください。", "を おしてね。"))]) == 9  # 8 options + repeat
    assert result.connected is not None and result.connected.target == "queue crisis-yorube-urgent"  # urgent
    general = call(make_app("2022-07-08T12:00:00+09:00"), ["9"])
    assert general.connected is not None and general.connected.target == "queue general-tsunagari"


def test_foreign_caller_goes_to_an_interpreter_not_a_japanese_only_line(make_app: AppFactory) -> None:
    """When the foreign-language partner is full, a Portuguese speaker goes to the interpreter-backed partner,
    skipping the Japanese-only general line, and then hears the foreign-language line first, in Portuguese (the
    line's Portuguese name; a line without one is named in English)."""
    result = call(make_app("2026-12-26T20:00:00+09:00"), ["3", "5", "-"], queue_result="queue-full")
    assert [e.target for e in result.of("enqueue")] == ["foreign-worldbridge", "general-aozora"]
    heard = result.heard("pt-BR")
    first = heard.index("Você pode ligar para a Linha Yorisoi (para outros idiomas, pressione 2), no número "
                        "0120-279-338.")
    assert heard[first + 1] == "Você pode ligar para a Linha Yorisoi, no número 0120-279-338."


def test_foreign_language_line_is_offered_only_in_its_hours(make_app: AppFactory) -> None:
    """よりそい's foreign-language line (10:00-22:00) is named at 21:30 but not at 22:00 for an English speaker."""
    inside = call(make_app("2026-12-26T20:59:00+09:00"), ["3", "1", "-"], queue_result="queue-full")
    assert any("press 2 for foreign languages" in h for h in inside.heard("en"))
    routing = make_app("2026-12-26T20:59:00+09:00").extensions["ivr.config"].current.routing
    import datetime as dt

    late = routing.open_referrals(dt.datetime.fromisoformat("2026-12-26T22:00:00+09:00"), "foreign", language="en")
    assert [r.id for r in late] == ["yorisoi"]
