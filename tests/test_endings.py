"""Endings that hold the caller, 110/119 first in every language, under-18 wording all the way, the interpreter
keeping option 3 open, and the hold sound between reassurance lines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import redis

from ivr.call.endings import quietest_hours
from menus import load_menu
from tests.support import AppFactory, call
from tests.transcripts import GOLDEN, SCRIPTS, render

OPEN = "2025-05-03T03:00:00+09:00"
MENU = load_menu(Path(__file__).parents[1] / "menus" / "menu.yaml")


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_golden_transcripts_are_what_callers_hear(name: str) -> None:
    """The reviewed transcripts in tests/golden/ (`make golden` writes them again) match the calls as they are."""
    assert render(name) == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")


def emergency_then_person(result, lang: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(index of the 110/119 notice in `lang`, index of the first queue or dial) in the call's events."""
    notice = MENU.line(lang, "emergency_short")
    spoken = [i for i, e in enumerate(result.events)
              if (e.kind == "say" and e.text == notice.text) or (e.kind == "play" and e.target.split("?")[0]
                                                                 .endswith(f"/{lang}/emergency_short.wav"))]
    routed = [i for i, e in enumerate(result.events) if e.kind in ("enqueue", "dial")]
    assert spoken and routed, (lang, [str(e) for e in result.events])
    return spoken[0], routed[0]


@pytest.mark.parametrize(("key", "lang"), [("1", "en"), ("9", "th"), ("0", "ne")])
def test_110_and_119_come_first_in_the_callers_language(make_app: AppFactory, key: str, lang: str) -> None:
    """English, Thai and Nepali (recorded) callers hear 110/119 in their language right after choosing it, before
    they are put through; nothing else in their language comes before it."""
    result = call(make_app(OPEN), ["3", key])
    notice, routed = emergency_then_person(result, lang)
    chosen = [i for i, e in enumerate(result.events) if e.kind == "key"][-1]
    assert chosen < notice < routed
    assert all(e.kind not in ("say", "play") or e.lang not in (MENU.language(lang).say, lang)
               for e in result.events[chosen + 1:notice])


def test_closed_message_gives_110_and_119_in_english_too(make_app: AppFactory) -> None:
    """Outside every window the English part of the closed message has the emergency numbers right after "closed"."""
    heard = call(make_app("2026-11-23T12:00:00+09:00")).heard("en")
    assert heard[:2] == ["The loneliness and isolation hotline is closed now.",
                         "In an emergency, call 110 for the police, or 119 for fire and ambulance."]


def test_busy_ending_in_every_language_holds_the_caller(make_app: AppFactory) -> None:
    """A Korean caller whose chain is full hears the lines open now, the chat consultation, call again later, then
    110/119 and goodbye, all in Korean; phone numbers digit by digit (the voice cannot say-as telephone)."""
    result = call(make_app(OPEN), ["3", "3", "-"], queue_result="queue-full")
    heard = result.heard("ko-KR")
    ending = heard[heard.index(MENU.line("ko", "all_busy").text):]
    assert ending[1] == "요리소이 핫라인, 전화번호 0 1 2 0, 2 7 9, 3 3 8번으로 상담하실 수 있습니다."
    assert MENU.line("ko", "try_later").text in ending
    assert any("채팅" in line for line in ending)
    assert ending[-2:] == [MENU.line("ko", "emergency_short").text, MENU.line("ko", "goodbye").text]


def adult_texts() -> list[str]:
    """The first words of every Japanese line that has a plain-words variant for under-18 callers."""
    table = MENU.spec.prompts["ja"]
    return [table[k].split("{")[0] for k in table if f"{k}@under18" in table and table[k].split("{")[0]]


@pytest.mark.parametrize(("at", "keys"), [(OPEN, ["2", "-"]), ("2026-12-26T09:00:00+09:00", ["2", "-"])])
def test_under18_caller_never_hears_adult_wording(make_app: AppFactory, at: str, keys: list[str]) -> None:
    """After pressing 2 (the under-18 line open, or closed and put through to the general line), every line is
    in plain words: connecting, waiting, busy, the lines, 110/119, goodbye."""
    result = call(make_app(at), keys, queue_result="queue-full")
    pressed = next(i for i, e in enumerate(result.events) if e.kind == "key")
    after = [e.text for e in result.events[pressed:] if e.kind == "say"]
    assert after and after[-1] == "でんわ してくれて ありがとう。"
    adult = adult_texts()
    assert [line for line in after if any(line.startswith(a) for a in adult)] == []
    assert "いのちが あぶない ときは、すぐに 110ばんか 119ばんに でんわしてね。" in after


def test_interpreter_keeps_the_foreign_language_option_open(make_app: AppFactory) -> None:
    """At 03:00 on 27 Dec 2026 the foreign-language partner is off shift but the general line's interpreter partner
    is on: option 3 is offered, and an English speaker is told they are connected through an interpreter."""
    result = call(make_app("2026-12-27T03:00:00+09:00"), ["3", "1"])
    assert "外国語で相談したい方は、3を押してください。" in result.heard("ja")
    heard = result.heard("en")
    notice = heard.index("In an emergency, call 110 for the police, or 119 for fire and ambulance.")
    assert heard[notice + 1] == ("We will connect you with a counsellor through a telephone interpreter. Please "
                                 "stay on the line.")
    assert result.connected is not None and result.connected.target == "queue general-aozora"


def test_waiting_is_never_silence(make_app: AppFactory) -> None:
    """Every wait round plays the hold sound between reassurance lines; no pause is longer than 10 s."""
    result = call(make_app(OPEN), ["1"], wait_rounds=[3])
    assert len(result.of("hold")) == 6
    assert all(int(e.text.split()[0]) <= 10 for e in result.of("pause"))


def test_quietest_hours_are_where_most_callers_got_through() -> None:
    """Three hours with the best share of answered calls, across midnight too; nothing from too little data."""
    calls = {h: 20 for h in range(24)}
    answered = {h: 2 for h in range(24)} | {23: 15, 0: 16, 1: 14}
    assert quietest_hours(calls, answered) == (23, 2)
    assert quietest_hours({3: 50}, {3: 40}) is None  # under 100 calls in the whole campaign
    assert quietest_hours(calls, {}) is None  # no answered calls counted per hour: nothing to claim


def test_busy_ending_names_the_hours_the_last_campaign_was_least_busy(make_app: AppFactory,
                                                                       redis_url: str) -> None:
    """With GW 2024's counts in the store, a caller in GW 2025 who cannot get through is told when callers got
    through most often last time."""
    client = redis.Redis.from_url(redis_url)
    day = dt.date(2024, 5, 4)
    counts = {f"calls|general|h{h:02d}": 30 for h in range(24)}
    counts |= {f"answered|h{h:02d}": 3 for h in range(24)} | {"answered|h06": 25, "answered|h07": 28, "answered|h08": 20}
    client.hset(f"ivr:agg:gw-2024:{day.isoformat()}", mapping=counts)
    heard = call(make_app(OPEN), ["1", "-"], queue_result="queue-full").heard()
    assert heard[heard.index("時間をおいて、もう一度おかけください。") + 1] == MENU.line(
        "ja", "quieter_hours", start="6", end="9").text


def test_a_child_put_through_to_the_general_line_hears_the_childrens_lines(make_app: AppFactory) -> None:
    """The under-18 line closed, the general line full: the busy ending names the 24-hour children's line."""
    heard = call(make_app("2026-12-26T09:00:00+09:00"), ["2", "-"], queue_result="queue-full").heard()
    assert "24時間子供SOSダイヤル、でんわばんごう 0120-0-78310 で そうだん できるよ。" in heard


def test_a_hold_sound_elsewhere_is_played_by_its_own_length(make_app: AppFactory) -> None:
    """IVR_HOLD_URL with IVR_HOLD_SECONDS=4: a 10-second stretch is two plays and two seconds' pause."""
    from tests.test_queue import wait_doc

    root = wait_doc(make_app(OPEN, IVR_HOLD_URL="https://cdn.example.jp/hold.mp3", IVR_HOLD_SECONDS="4"),
                    queue_time=0)
    assert [(v.tag, v.get("loop") or v.get("length"), (v.text or "").strip()) for v in root if v.tag != "Say"] == [
        ("Play", "2", "https://cdn.example.jp/hold.mp3"), ("Pause", "2", ""),
        ("Play", "2", "https://cdn.example.jp/hold.mp3"), ("Pause", "2", "")]
