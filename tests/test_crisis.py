"""A caller in crisis is heard: words of suicidal crisis at any menu put them through to a person at once, on the
urgent lane, whatever the confidence and whatever else they said."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from menus import load_menu
from menus.speech import normalize
from routing import ConfigError
from tests.support import AppFactory, call

OPEN = "2025-05-03T03:00:00+09:00"  # GW 2025: no option is urgent, so the crisis lane is the general line's
TRIAL = "2022-07-08T12:00:00+09:00"  # the 2022 trial: key 3 (死にたいほどつらい) is the urgent option
MENU = load_menu(Path(__file__).parents[1] / "menus" / "menu.yaml")
CRISIS_JA = "おつらい気持ちを話してくださって、ありがとうございます。すぐに相談員におつなぎします。"
CRISIS_EN = "Thank you for telling us how you feel. We are connecting you with a counsellor right now."

# What a Japanese speech recogniser writes for a caller in crisis: kanji, kana, katakana, half width, spaces, and
# the words around it.
JAPANESE = [
    "死にたい", "しにたい", "シニタイ", "ｼﾆﾀｲ", "死 に た い", "もう死にたいです", "死にたくなる", "死にたいほどつらい",
    "自殺したい", "じさつ", "ジサツを考えています", "消えたい", "きえてしまいたい", "消えてなくなりたい",
    "生きていたくない", "いきていたくない", "もう生きてたくない", "殺してほしい", "ころして", "首吊りを考えて",
    "飛び降りようと思って", "リストカットしてしまった", "楽になりたい", "全部終わりにしたい", "いなくなりたい",
]
OTHERS = [  # (language the list is in, a phrasing)
    ("en", "I want to die"), ("en", "I'm going to kill myself"), ("en", "I feel SUICIDAL"),
    ("en", "I don't want to live anymore"), ("zh", "我想死"), ("zh", "我想自杀"), ("ko", "죽고 싶어요"),
    ("ko", "자살하고 싶어요"), ("vi", "tôi muốn chết"), ("pt", "eu quero morrer"), ("es", "quiero morirme"),
    ("fil", "gusto ko nang mamatay"), ("id", "saya ingin bunuh diri"), ("th", "ฉันอยากตาย"), ("ne", "म आत्महत्या गर्छु"),
]


@pytest.mark.parametrize("said", JAPANESE)
def test_japanese_phrasings_are_recognised_after_normalising(said: str) -> None:
    """However the recogniser writes it (kana, katakana, half width, spaces, words around it), it is heard."""
    assert MENU.crisis(said) == "ja"


@pytest.mark.parametrize(("lang", "said"), OTHERS)
def test_each_languages_own_phrasings_are_recognised(lang: str, said: str) -> None:
    """An English, Chinese, Korean, ... caller's own words of crisis are heard, and in which language."""
    assert MENU.crisis(said, prefer=lang) == lang


@pytest.mark.parametrize("said", ["女性です", "孤独です", "English", "18歳以下です", "地震で避難しています", "日本語",
                                  "Nepali", "さみしい", "お金がない", "しのうち"])
def test_ordinary_answers_are_not_taken_for_crisis(said: str) -> None:
    """Choosing an option or a language in words is not mistaken for a crisis."""
    assert MENU.crisis(said) is None


def test_normalising_folds_width_kana_case_and_spaces() -> None:
    """ｼﾆﾀｲ, シ ニ タ イ and しにたい are the same words to the matcher; Thai and Devanagari marks are kept."""
    assert normalize("ｼﾆﾀｲ") == normalize("シ ニ タ イ。") == "しにたい"
    assert normalize("I Want To DIE!") == "iwanttodie"
    assert normalize("อยากตาย") == "อยากตาย" and normalize("आत्महत्या") == "आत्महत्या"


@pytest.mark.parametrize("said", [*JAPANESE[:8], "say:I want to kill myself"])
def test_crisis_at_the_top_menu_reaches_a_person_in_one_step(make_app: AppFactory, said: str) -> None:
    """At the top menu, at confidence 0.9 or 0.1 alike: one warm line, then the urgent queue, with no other question
    asked: the general line's for Japanese words, the foreign-language line's for English ones."""
    words = said.removeprefix("say:")
    english = said.startswith("say:")
    queue = "foreign-worldbridge-urgent" if english else "general-tsunagari-urgent"
    for confidence in ("0.9", "0.1"):
        result = call(make_app(OPEN), [f"say:{words}@{confidence}"])
        speech = next(i for i, e in enumerate(result.events) if e.kind == "speech")
        first = next(e for e in result.events[speech:] if e.kind == "say")
        assert (first.text, first.lang) == ((CRISIS_EN, "en-US") if english else (CRISIS_JA, "ja-JP"))
        assert next(e.target for e in result.of("enqueue")) == queue
        assert [path for path, _ in result.requests][:3] == ["/voice/incoming", "/voice/menu", "/voice/wait"]
        assert result.connected is not None and result.connected.target == f"queue {queue}"


def test_crisis_in_a_campaign_with_an_urgent_option_goes_to_it(make_app: AppFactory) -> None:
    """In the 2022 trial the crisis lane is the option marked urgent (死にたいほどつらい), its urgent queue."""
    result = call(make_app(TRIAL), ["say:もう消えたい@0.4"])
    assert result.connected is not None and result.connected.target == "queue crisis-yorube-urgent"


def test_crisis_at_the_language_choice_is_heard_in_the_callers_language(make_app: AppFactory) -> None:
    """An English speaker at the language choice: the English line, then the foreign-language line's urgent queue."""
    result = call(make_app(OPEN), ["3", "say:please help I want to end my life@0.3"])
    speech = next(i for i, e in enumerate(result.events) if e.kind == "speech")
    assert next(e.text for e in result.events[speech:] if e.kind == "say") == CRISIS_EN
    assert result.connected is not None and result.connected.target == "queue foreign-worldbridge-urgent"


def test_crisis_at_the_busy_ending_puts_the_caller_through_after_all(make_app: AppFactory) -> None:
    """A Thai caller whose chain was full, who says อยากตาย at the referral menu, is put through on the urgent lane
    in Thai (the interpreter partner), not hung up on."""
    result = call(make_app(OPEN), ["3", "9", "say:ฉันอยากตาย@0.2"], queue_result="queue-full")
    assert [e.target for e in result.of("enqueue")] == ["general-aozora", "general-aozora-urgent"]
    speech = next(i for i, e in enumerate(result.events) if e.kind == "speech")
    assert result.events[speech].lang == "th-TH"  # the referral menu listens in the caller's language
    said = [e.text for e in result.events[speech:] if e.kind == "say"]
    assert said[0] == MENU.line("th", "crisis").text
    assert said[1] == MENU.line("th", "connecting_interpreter").text


def test_crisis_waits_for_a_person_even_at_a_full_partner(make_app: AppFactory, tmp_path: Path) -> None:
    """A partner at its cap is skipped for other callers, but a caller in crisis is never sent to recorded lines
    when a person could take them: they wait, first in line, at the first partner."""
    text = (Path(__file__).parents[1] / "routing" / "routing.yaml").read_text(encoding="utf-8")
    capped = text.replace("    queue: general-tsunagari\n", "    queue: general-tsunagari\n    capacity: 1\n")
    capped = capped.replace("    queue: general-aozora\n", "    queue: general-aozora\n    capacity: 1\n")
    routing = tmp_path / "routing.yaml"
    routing.write_text(capped, encoding="utf-8")
    app = make_app(OPEN, IVR_ROUTING_FILE=str(routing))
    for _ in range(2):  # fill both places and keep them (the callers wait on)
        call(app, ["1"], queue_result="hangup", wait_rounds=[1])
    from tests.test_queue import press  # the menu step alone: the caller stays in the queue

    assert press(app, "CA" + "a" * 32, "1") == "general-tsunagari"
    assert press(app, "CA" + "b" * 32, "1") == "general-aozora"
    result = call(app, ["say:死にたい@0.9"])
    assert result.of("enqueue")[0].target == "general-tsunagari-urgent"


def test_crisis_is_counted_by_option_and_language_never_with_the_words(make_app: AppFactory) -> None:
    """Operators see how many callers were put through in crisis, by option and language; the words are nowhere."""
    app = make_app(OPEN)
    with capture_logs() as logs:
        call(app, ["say:自殺したいと思っています@0.8"])
        call(app, ["3", "say:I want to die@0.8"])
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'ivr_crisis_total{language="ja",option="general"} 1.0' in metrics
    assert 'ivr_crisis_total{language="en",option="foreign"} 1.0' in metrics
    assert 'ivr_crisis_total{language="ko",option="women"} 0.0' in metrics  # every series from the start
    assert 'ivr_menu_selections_total{option="general"} 0.0' in metrics  # a crisis is not a choice of option
    assert "自殺" not in str(logs) and "want to die" not in str(logs)
    assert any(str(e.get("decision", "")).startswith("crisis:queue:") for e in logs)


def test_an_empty_japanese_crisis_list_is_refused(tmp_path: Path) -> None:
    """A menu file whose Japanese crisis list was emptied by mistake is refused, naming the file and the path."""
    text = (Path(__file__).parents[1] / "menus" / "menu.yaml").read_text(encoding="utf-8")
    start = text.index("\n  ja:\n", text.index("\ncrisis:")) + 1
    end = text.index("\n  en:\n", start) + 1
    path = tmp_path / "menu.yaml"
    path.write_text(text[:start] + "  ja: []\n" + text[end:], encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_menu(path)
    assert str(e.value) == f"{path}: crisis.ja: must list the Japanese crisis expressions"


@pytest.mark.parametrize("said", ["消えちゃいたい", "死んじゃおうかな", "生きてるのがつらい", "生きる価値がない",
                                  "首をくくりたい", "いなくなってしまいたい", "線路に飛び込みそう", "死にてー",
                                  "自分を殺したい", "いきるのがつらい"])
def test_more_japanese_phrasings_are_japanese_callers_words(said: str) -> None:
    """Common spoken forms are heard, and kana ones count as the Japanese caller's words, not plain Japanese (which
    would route the caller away from Japanese-speaking partners)."""
    assert MENU.crisis(said) == "ja"


def test_kana_crisis_words_keep_the_japanese_partner(make_app: AppFactory) -> None:
    """いきるのがつらい at the trial's menu reaches its crisis partner, as 生きるのがつらい does."""
    result = call(make_app(TRIAL), ["say:いきるのがつらい@0.9"])
    assert result.connected is not None and result.connected.target == "queue crisis-yorube-urgent"


def test_a_crisis_caller_waits_longer_before_the_next_partner(make_app: AppFactory) -> None:
    """On the urgent lane the partner's maximum wait (300 s) is not the end: the caller stays first in line three
    times as long before the next partner is tried."""
    from tests.test_queue import wait_doc

    app = make_app(OPEN)
    urgent = wait_doc(app, queue_time=300, partner="tsunagari", option="general", extra="&u=1")
    assert "Leave" not in [v.tag for v in urgent] and "Play" in [v.tag for v in urgent]
    assert [v.tag for v in wait_doc(app, queue_time=900, partner="tsunagari", option="general", extra="&u=1")] == [
        "Leave"]
    assert [v.tag for v in wait_doc(app, queue_time=300, partner="tsunagari", option="general")] == ["Leave"]


def test_an_under18_caller_in_crisis_keeps_plain_words(make_app: AppFactory) -> None:
    """A child whose chain was full says もう死にたい at the busy ending: put through on the urgent lane, every line
    in plain words, and the call still counted as an under-18 call."""
    app = make_app(OPEN)
    result = call(app, ["2", "say:もう死にたい@0.5"], queue_result="queue-full", wait_rounds=[1, 1, 1, 1])
    speech = next(i for i, e in enumerate(result.events) if e.kind == "speech")
    said = [e.text for e in result.events[speech:] if e.kind == "say"]
    assert said[:2] == [MENU.line("ja", "crisis", "under18").text, MENU.line("ja", "wait", "under18").text]
    after = [e.target for e in result.events[speech:] if e.kind == "enqueue"]
    assert after[0] == "general-tsunagari-urgent"  # (the scripted queues are all full, so it rolls on from there)
    record = app.extensions["ivr.store"].call(result.call_sid)
    assert (record["option"], record["crisis"]) == ("under18", "1")


def test_the_busy_ending_listens_in_each_languages_recogniser(make_app: AppFactory) -> None:
    """Mandarin is recognised as cmn-Hans-CN (Polly speaks cmn-CN; the recogniser does not take that code)."""
    result = call(make_app(OPEN), ["3", "2", "say:我想死@0.5"], queue_result="queue-full")
    assert [e.lang for e in result.of("speech")] == ["cmn-Hans-CN"]
    speech = next(i for i, e in enumerate(result.events) if e.kind == "speech")
    assert next(e.target for e in result.events[speech:] if e.kind == "enqueue") == "foreign-worldbridge-urgent"
