"""Every caller hears their own language: announced, waiting, rolled over, closed and referred, spoken or played."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from common.facts import JST
from ivr.tools.standin import CallResult, Event
from menus import CALL_KEYS, HOME_KEYS, WHEN_KEYS, Phone, load_menu, missing_variants
from routing import load_routing
from tests.support import AppFactory, call

MENU = load_menu()
OPEN = "2025-05-03T12:00:00+09:00"  # Golden Week 2025; the foreign-language line and よりそい's foreign line are open
AFTER = "2025-05-07T10:00:00+09:00"  # the instant the window closed
CHOICES = dict(MENU.spec.language_keys)  # key -> language
ROUTING = load_routing(layouts=MENU.layouts)
WORLDBRIDGE = ROUTING.partners["worldbridge"]
AOZORA = ROUTING.partners["aozora"]  # the general line, which takes other languages through a telephone interpreter
FOREIGN_LINE = next(r for r in ROUTING.spec.referrals if r.id == "yorisoi-foreign")
SHIPPED_AUDIO = Path(__file__).resolve().parent.parent / "menus" / "audio"


def spoken_in(result: CallResult, code: str) -> list[Event]:
    """What the caller heard in a language: <Say> with its voice and language, or clips from its recordings."""
    lang = MENU.language(code)
    return [e for e in result.events if (e.kind == "say" and e.voice == lang.voice and e.lang == lang.say)
            or (e.kind == "play" and e.lang == code)]


def speech(result: CallResult) -> list[Event]:
    """Everything said or played in some menu language (not the hold sound between the lines)."""
    return [e for e in result.events if e.kind == "say" or (e.kind == "play" and e.lang in MENU.spec.languages)]


def heard_text(result: CallResult, code: str, prompt: str, **fields: object) -> bool:
    """The prompt was said in `code` (its text with its voice) or played (its clips, in order)."""
    line = MENU.line(code, prompt, **fields)  # type: ignore[arg-type]
    if MENU.language(code).voice is None:
        played = [e.target.rsplit("/", 1)[-1].split(".wav")[0] for e in result.events if e.kind == "play"]
        clips = list(line.clips or ())
        return any(played[i:i + len(clips)] == clips for i in range(len(played)))
    return any(e.text == line.text for e in spoken_in(result, code))


def test_every_prompt_key_exists_in_every_language() -> None:
    """Each language has every prompt a call can reach; Japanese also has the menus; a language without a voice
    has its date wording; and a key one foreign language has, every other one has too."""
    for code in MENU.spec.languages:
        have = set(MENU.spec.prompts[code])
        need = set(CALL_KEYS) | ({*HOME_KEYS} if code == "ja" else {"announce"})
        if MENU.language(code).voice is None:
            need |= set(WHEN_KEYS)
        assert need <= have, f"{code} lacks {sorted(need - have)}"
    foreign = [c for c in MENU.spec.languages if c != "ja"]
    common = set.intersection(*(set(MENU.spec.prompts[c]) for c in foreign))
    assert common >= {*CALL_KEYS, "announce"}


@pytest.mark.parametrize("key", list(CHOICES))
def test_each_language_is_announced_then_spoken_through_the_call(make_app: AppFactory, key: str) -> None:
    """Per language: the choice is announced in it; the caller then hears connecting (through an interpreter where
    the line does not speak it), the wait (with the place in line), the rollover and the referral lines in it, with
    its voice or its recordings, never another language."""
    code = CHOICES[key]
    result = call(make_app(OPEN), ["3", key, "-"], queue_result="queue-full", wait_rounds=[1, 1], queue_position=4)
    assert heard_text(result, code, "announce", key=key)
    # plain Japanese needs no interpreter, so its callers are not told of one
    through = code not in AOZORA.languages and not MENU.language(code).say.startswith("ja")
    interpreted = "connecting_interpreter" if through else "overflow"
    # a language the foreign-language line speaks rolls over to aozora; any other goes to aozora straight away
    first, rollover = ("connecting", interpreted) if code in WORLDBRIDGE.languages else (interpreted, "all_busy")
    for prompt, fields in ((first, {}), ("wait", {}), ("wait_position", {"position": "4"}),
                           (rollover, {}), ("all_busy", {}), ("try_later", {}), ("goodbye", {})):
        assert heard_text(result, code, prompt, **fields), f"{code}: {prompt} not heard"
    chosen = [i for i, e in enumerate(result.events) if e.kind == "key"][1]  # the language key
    said = speech(result)
    after = [e for e in result.events[chosen:] if e in said]
    assert after and all(e in spoken_in(result, code) for e in after), f"{code}: another language after the choice"
    local = FOREIGN_LINE.names.get(code)  # the referral line's own name in the language, where it has one
    if local and MENU.language(code).voice:
        assert any(local in e.text for e in spoken_in(result, code)), code
    elif local:
        assert f"name.{FOREIGN_LINE.id}.wav" in result.played(code)
    assert result.connected is None and not result.stranded


@pytest.mark.parametrize("key", list(CHOICES))
def test_closed_message_in_each_language(make_app: AppFactory, key: str) -> None:
    """A caller whose language choice arrives after the window closed hears the closed message, the next opening
    and the lines open now in their own language."""
    code = CHOICES[key]
    result = call(make_app(AFTER), [key], path="/voice/language?n=1")  # asked again first: Twilio sent no key
    assert heard_text(result, code, "closed")
    assert heard_text(result, code, "goodbye")
    chosen = next(i for i, e in enumerate(result.events) if e.kind == "key")
    assert all(e.kind != "say" or e in spoken_in(result, code) for e in result.events[chosen:]), code
    assert result.of("hangup") and not result.stranded


def test_next_opening_is_said_as_the_language_says_dates(make_app: AppFactory) -> None:
    """The next (assumed) window, 25 Dec 09:00 JST, in the words of each language, not as digits and dashes."""
    expect = {"2": "预计下次开放时间是日本时间12月25日9点。", "3": "다음 운영은 일본 시간으로 12월 25일 9시부터 예정되어 있습니다.",
              "8": "Layanan direncanakan dibuka lagi pada tanggal 25 Desember, pukul 9, waktu Jepang.",
              "5": "A previsão é que ela abra novamente em 25 de dezembro, às 9 horas, horário do Japão.",
              "6": "Se prevé que vuelva a abrir el jueves 25 de diciembre, a las 9 en punto, hora de Japón.",
              "*": "つぎは、12月25日、木曜日の午前9時から はじまる よていです。"}
    for key, line in expect.items():
        result = call(make_app(AFTER), [key], path="/voice/language?n=1")
        assert line in result.heard(), key
    nepali = call(make_app(AFTER), ["0"], path="/voice/language?n=1")
    assert nepali.played("ne")[nepali.played("ne").index("next_open_tentative.0.wav"):][:7] == [
        "next_open_tentative.0.wav", "month.12.wav", "number.25.wav", "when_hour.2.wav", "number.9.wav",
        "when_hour.3.wav", "next_open_tentative.1.wav"]


NEW_PROMPTS = ("crisis", "connecting_interpreter", "try_later", "quieter_hours", "referral_chat", "referral_mail")


def test_every_language_has_a_crisis_list_and_the_new_prompts() -> None:
    """A caller in crisis in any language is heard, and told in it; a child hears plain words on every line."""
    assert list(MENU.spec.crisis) == ["ja", "easy", "en", "zh", "ko", "vi", "pt", "es", "fil", "id", "th", "ne"]
    for code in MENU.spec.languages:
        assert [w for w in MENU.spec.crisis[code] if w.strip()] == MENU.spec.crisis[code] != [], code
        assert [k for k in NEW_PROMPTS if k not in MENU.spec.prompts[code]] == [], code
    assert {"死にたい", "しにたい", "自殺", "消えたい", "いなくなりたい", "殺して", "リストカット"} <= set(MENU.spec.crisis["ja"])
    assert {"want to die", "kill myself", "suicide", "suicidal"} <= set(MENU.spec.crisis["en"])
    assert missing_variants(MENU.spec) == []
    assert MENU.line("ja", "crisis", "under18").text == (
        "つらい きもちを おしえて くれて、ありがとう。すぐに、おはなしを きいてくれる ひとに つなぐね。")
    assert MENU.line("ja", "quieter_hours", start="14", end="16").text == (
        "前回の受付期間では、14時から16時ごろが、比較的つながりやすい時間でした。")


def test_referral_lines_do_not_say_also() -> None:
    """When #9999 itself is closed, no caller is told they can 'also' call another line, in any language."""
    number = Phone("0120-279-338")
    assert MENU.line("ja", "referral", name="よりそいホットライン", number=number).text == (
        "よりそいホットライン、電話番号 0120-279-338 で相談できます。")
    assert MENU.line("ja", "referral", "under18", name="チャイルドライン", number=number).text == (
        "チャイルドライン、でんわばんごう 0120-279-338 で そうだん できるよ。")
    assert MENU.line("en", "referral", name="the Yorisoi Hotline", number=number).text == (
        "You can call the Yorisoi Hotline at 0120-279-338.")
    also = ("also", "でも", "にも", "也", "도", "cũng", "também", "también", "ring", "juga", "ด้วย", "पनि")
    said = {f"{code}.{key}": [w for w in also if w in text.casefold()] for code, table in MENU.spec.prompts.items()
            for key, text in table.items() if key.partition("@")[0] == "referral"}
    assert len(said) == 13 and {k: v for k, v in said.items() if v} == {}


@pytest.mark.parametrize(("code", "text", "clips"), [
    ("id", "tanggal 2 Mei, pukul 10", ("when_hour.0", "number.2", "month.5", "when_hour.2", "number.10")),
    ("ne", "मे 2 तारिख, 10 बजे", ("month.5", "number.2", "when_hour.2", "number.10", "when_hour.3")),
])
def test_dates_are_said_with_the_month_name(code: str, text: str, clips: tuple[str, ...]) -> None:
    """Indonesian and Nepali callers hear the next opening with the month's name, not 'month 5' or गते."""
    line = MENU.when(dt.datetime(2025, 5, 2, 10, 0, tzinfo=JST), code)
    assert (line.text, line.clips) == (text, clips)


def test_nepali_is_played_from_recordings_served_with_caching(make_app: AppFactory) -> None:
    """Nepali has no Twilio voice: every line after the choice is <Play>, and each clip is served with long caching
    and a content-hash URL."""
    app = make_app(OPEN)
    result = call(app, ["3", "0"], wait_rounds=1, queue_position=12)
    plays = [e for e in speech(result) if e.kind == "play"]
    assert plays and {e.lang for e in plays} == {"ne"}
    assert result.played("ne")[:3] == ["announce.0.wav", "number.0.wav", "announce.1.wav"]
    assert heard_text(result, "ne", "wait_position", position="12")
    assert result.connected is not None and result.connected.target == "queue general-aozora"  # interpreters
    client = app.test_client()
    target = plays[0].target.removeprefix("https://hotline.example.jp")
    assert target.startswith("/audio/ne/announce.0.wav?v=")
    with client.get(target) as got:
        assert got.status_code == 200 and got.mimetype in ("audio/wav", "audio/x-wav")
        assert got.data[:4] == b"RIFF" and "public" in got.headers["Cache-Control"]
        assert "max-age=604800" in got.headers["Cache-Control"]
        etag = got.headers["ETag"]
    with client.get(target, headers={"If-None-Match": etag}) as again:
        assert again.status_code == 304
    for bad in ("/audio/ne/nothing.wav", "/audio/ne/..%2fmenu.yaml", "/audio/xx/wait.wav", "/audio/ne/PLACEHOLDERS.txt"):
        with client.get(bad) as refused:
            assert refused.status_code == 404, bad


def _metric(app: object, lang: str, to: str) -> float:
    text = app.test_client().get("/metrics").get_data(as_text=True)  # type: ignore[attr-defined]
    line = next(x for x in text.splitlines() if x.startswith(f'ivr_audio_fallbacks_total{{language="{lang}",to="{to}"}}'))
    return float(line.split()[-1])


def test_missing_nepali_clip_falls_back_to_english_and_is_counted(make_app: AppFactory, tmp_path: Path) -> None:
    """A Nepali recording missing at run time: that line in English (there is no Nepali voice), counted; the other
    lines still play."""
    audio = tmp_path / "audio"
    shutil.copytree(SHIPPED_AUDIO, audio)
    app = make_app(OPEN, IVR_AUDIO_DIR=str(audio))
    (audio / "ne" / "wait.wav").unlink()  # gone after the config was loaded
    result = call(app, ["3", "0"], wait_rounds=1)
    assert MENU.line("en", "wait").text in result.heard("en-US")
    assert "connecting_interpreter.wav" in result.played("ne") and "wait.wav" not in result.played("ne")
    assert _metric(app, "ne", "en") == 1.0


def test_missing_clip_of_a_language_with_a_voice_falls_back_to_that_voice(make_app: AppFactory,
                                                                             tmp_path: Path) -> None:
    """Any prompt in any language may be a recording: English's `connecting` is played while it exists, and said
    with the English voice (counted) once it is gone."""
    menu = tmp_path / "menu.yaml"
    menu.write_text(MENU.source and Path(MENU.source).read_text(encoding="utf-8").replace(
        "  en: {name: English, say: en-US, voice: Polly.Joanna-Neural,",
        "  en: {name: English, say: en-US, voice: Polly.Joanna-Neural, recorded: true,"), encoding="utf-8")
    audio = tmp_path / "audio"
    shutil.copytree(SHIPPED_AUDIO, audio)
    (audio / "en").mkdir()
    shutil.copy(audio / "ne" / "connecting.wav", audio / "en" / "connecting.wav")
    app = make_app(OPEN, IVR_AUDIO_DIR=str(audio), IVR_MENU_FILE=str(menu))
    first = call(app, ["3", "1"])
    assert "connecting.wav" in first.played("en")
    assert MENU.line("en", "connecting").text not in first.heard("en-US")
    assert MENU.line("en", "wait").text in first.heard("en-US")  # not recorded: its voice, not counted
    (audio / "en" / "connecting.wav").unlink()
    second = call(app, ["3", "1"])
    assert MENU.line("en", "connecting").text in second.heard("en-US") and not second.played("en")
    assert _metric(app, "en", "same") == 1.0 and _metric(app, "en", "en") == 0.0


def test_plain_japanese_is_a_language_of_its_own(make_app: AppFactory) -> None:
    """やさしい日本語 (the star key): plain words in the Japanese voice, to the foreign-language partner, which speaks
    it; the top menu tells such callers which key to press."""
    result = call(make_app(OPEN), ["3", "*"])
    assert "やさしい にほんごで はなしたい ひとも、3を おして ください。" in result.heard("ja-JP")
    assert "そうだんいんに つなぎます。でんわを きらないで、まって ください。" in result.heard("ja-JP")
    assert result.connected is not None and result.connected.target == "queue foreign-worldbridge"
