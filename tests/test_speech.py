"""Callers who cannot press keys may say what they want; unsure answers are confirmed with the key, never guessed."""

from __future__ import annotations

import json

import redis
from defusedxml.ElementTree import fromstring
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from tests.support import BASE, TOKEN, AppFactory, call

OPEN = "2025-05-03T12:00:00+09:00"


def test_top_menu_and_language_choice_take_speech_with_hints(make_app: AppFactory) -> None:
    """The top menu listens in Japanese, the language choice in English, each with the words it understands."""
    app = make_app(OPEN)
    from twilio.request_validator import RequestValidator

    client = app.test_client()
    params = {"CallSid": "CA" + "1" * 32, "From": "+819011112222", "To": "+81120494949"}
    for path, language, words in (("/voice/incoming", "ja-JP", ["女性", "外国語", "English"]),
                                  ("/voice/menu?n=1", "en-US", ["Nepali", "Thai", "Indonesian"])):
        extra = {"Digits": "3"} if path.startswith("/voice/menu") else {}
        signature = RequestValidator(TOKEN).compute_signature(f"{BASE}{path}", {**params, **extra})
        body = client.post(path, data={**params, **extra}, base_url=BASE,
                           headers={"X-Twilio-Signature": signature}).get_data()
        gather = fromstring(body).find("Gather")
        assert gather is not None and gather.get("input") == "dtmf speech" and gather.get("language") == language
        hints = (gather.get("hints") or "").split(", ")
        assert all(w in hints for w in words), (path, hints)


def test_saying_an_option_with_confidence_is_like_pressing_its_key(make_app: AppFactory) -> None:
    result = call(make_app(OPEN), ["say:女性です@0.91"])
    assert result.connected is not None and result.connected.target == "queue women-sakura"


def test_saying_a_language_at_the_top_menu_goes_to_the_foreign_line_in_it(make_app: AppFactory) -> None:
    """"English" at the top menu: no language menu, the foreign-language partner, spoken to in English."""
    result = call(make_app(OPEN), ["say:English@0.88"])
    assert "We will connect you with a counsellor. Please stay on the line." in result.heard("en-US")
    assert not any("ご希望の言語" in h for h in result.heard("ja-JP"))
    assert result.connected is not None and result.connected.target == "queue foreign-worldbridge"


def test_an_unsure_answer_is_confirmed_with_the_key_not_guessed(make_app: AppFactory) -> None:
    """Low confidence: the caller is asked to press the option's key; a key then decides."""
    result = call(make_app(OPEN), ["say:女性@0.3", "5"])
    heard = result.heard("ja-JP")
    check = heard.index("念のため、番号で確かめさせてください。")
    assert heard[check + 1] == "女性の方は、5を押してください。"
    assert result.connected is not None and result.connected.target == "queue women-sakura"
    unsure = call(make_app(OPEN), ["say:女性@0.3", "-", "-", "-"])  # never confirmed: the general line, as for keys
    assert unsure.connected is not None and unsure.connected.target == "queue general-tsunagari"


def test_speech_that_names_nothing_or_two_things_is_asked_again(make_app: AppFactory) -> None:
    """Speech in another language, or naming two options, is not matched: said so, the menu again."""
    for said in ("say:I would like to talk@0.95", "say:女性と災害@0.95", "say:Bonjour@0.99"):
        result = call(make_app(OPEN), [said, "1"])
        heard = result.heard("ja-JP")
        assert "うまく聞き取れませんでした。" in heard, said
        assert heard.count("孤独や孤立に悩んでいる方は、1を押してください。") == 2, said
        assert result.connected is not None and result.connected.target == "queue general-tsunagari"


def test_language_said_at_the_language_choice(make_app: AppFactory) -> None:
    """At the language choice: a sure "Nepali" goes to the interpreters in Nepali (recordings); an unsure "Thai"
    repeats only Thai's own line, and its key decides."""
    sure = call(make_app(OPEN), ["3", "say:Nepali@0.9"])
    assert "connecting_interpreter.wav" in sure.played("ne")
    assert sure.connected is not None and sure.connected.target == "queue general-aozora"
    unsure = call(make_app(OPEN), ["3", "say:Thai please@0.4", "9"])
    thai = unsure.heard("th-TH")
    assert thai.count("ภาษาไทย กด 9") == 2 and thai[2:4] == [
        "ในกรณีฉุกเฉิน โทร 110 แจ้งตำรวจ หรือ 119 เรียกหน่วยดับเพลิงและรถพยาบาล",
        "เราจะโอนสายของคุณไปยังผู้ให้คำปรึกษาผ่านล่ามทางโทรศัพท์ กรุณาถือสายรอสักครู่"]
    assert unsure.connected is not None and unsure.connected.target == "queue general-aozora"


def test_speech_result_never_reaches_the_logs_or_the_store(make_app: AppFactory, redis_url: str) -> None:
    """What a caller says can be anything, their name included: it is matched, never logged or kept."""
    with capture_logs(processors=[merge_contextvars]) as logs:
        call(make_app(OPEN), ["say:山田花子です、女性です@0.95"])
    text = json.dumps(logs, ensure_ascii=False, default=str)
    assert '"event": "webhook"' in text and '"option": "women"' in text
    client = redis.Redis.from_url(redis_url)
    stored = b" ".join(k + b" " + (client.dump(k) or b"") for k in client.keys("*"))  # raw bytes of every value
    assert b"women" in stored and "山田花子".encode() not in stored
