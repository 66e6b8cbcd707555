"""The menu file: what is said, in which order, and how mistakes in the file are reported."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from common.configfile import ConfigError
from common.facts import JST
from menus import Phone, load_menu, spoken_when

MENU = load_menu()


def test_keys_one_to_six_in_the_contract_order() -> None:
    """Keys 1-6 are general, under 18, foreign language, gender, women, disaster (a published contract)."""
    assert [(o.key, o.id) for o in MENU.options] == [
        ("1", "general"), ("2", "under18"), ("3", "foreign"), ("4", "gender"), ("5", "women"), ("6", "disaster")]


def test_menu_opens_with_greeting_then_emergency_notice() -> None:
    """Before any option the caller hears who answered and that 110/119 are for immediate danger."""
    lines = MENU.top_menu()
    assert lines[0].text == "こちらは、孤独・孤立相談ダイヤルです。お電話ありがとうございます。"
    assert lines[1].text == "いま命の危険があるときは、すぐに110番か119番に電話してください。"
    assert lines[2].text == "孤独や孤立に悩んでいる方は、1を押してください。"
    assert lines[-1].text == "もう一度お聞きになるときは、9を押してください。"


def test_under18_option_and_prompts_use_plain_words() -> None:
    """A child hears hiragana and plain words, not 18歳以下の方."""
    line = next(x for x in MENU.top_menu() if "2を" in x.text)
    assert line.text == "18さいまでの ひとは、2を おしてね。"
    assert MENU.line("ja", "connecting", "under18").text == "いまから、おはなしを きいてくれる ひとに つなぐよ。すこし まっててね。"


def test_language_choice_announces_each_language_in_itself() -> None:
    """Each language is offered in that language, with its own voice."""
    lines = MENU.language_menu()
    offered = {line.lang: line.text for line in lines[1:]}
    assert offered == {
        "en": "For English, press 1.", "zh": "需要中文服务，请按2。", "ko": "한국어 상담은 3번을 눌러 주세요.",
        "vi": "Để được tư vấn bằng tiếng Việt, xin bấm phím 4.", "pt": "Para atendimento em português, pressione 5.",
        "es": "Para atención en español, marque 6.", "fil": "Para sa Filipino, pindutin ang 7.",
        "id": "Untuk bahasa Indonesia, tekan 8.", "th": "ภาษาไทย กด 9", "ne": "नेपाली भाषाका लागि 0 थिच्नुहोस्।",
        "easy": "やさしい にほんごで はなしたい ひとは、こめじるしを おして ください。"}
    assert {code: MENU.language(code).say for code in offered} == {
        "en": "en-US", "zh": "cmn-CN", "ko": "ko-KR", "vi": "vi-VN", "pt": "pt-BR", "es": "es-US", "fil": "fil-PH",
        "id": "id-ID", "th": "th-TH", "ne": "ne-NP", "easy": "ja-JP"}


def test_phone_numbers_stay_separate_parts() -> None:
    """A referral number is its own part, so it can be read as a telephone number."""
    line = MENU.line("en", "referral", name="the Yorisoi Hotline", number=Phone("0120-279-338"))
    assert line.parts == ("You can call the Yorisoi Hotline at ", Phone("0120-279-338"), ".")


def test_spoken_answers_choose_one_thing_or_nothing() -> None:
    """A caller who says an option or a language is routed by it; one who names two things is asked again."""
    assert MENU.heard("女性の相談です", options=True) == ("option", "women")
    assert MENU.heard("ＥＮＧＬＩＳＨ please", options=True) == ("language", "en")
    assert MENU.heard("外国語、英語で", options=True) == ("language", "en")  # the foreign option, in its language
    assert MENU.heard("女性 災害", options=True) is None
    assert MENU.heard("女性", options=False) is None  # at the language menu only a language can be chosen
    assert MENU.heard("。。", options=True) is None


def test_spoken_dates() -> None:
    """The next opening is read as a person would say it, in JST."""
    when = dt.datetime(2026, 12, 25, 9, 0, tzinfo=JST)
    assert spoken_when(when, "ja") == "12月25日、金曜日の午前9時"
    assert spoken_when(when, "en") == "Friday 25 December at 9 a.m."
    assert spoken_when(when.replace(hour=22, minute=30), "en") == "Friday 25 December at 10:30 p.m."


def test_missing_translation_is_an_error(tmp_path: Path) -> None:
    """A language without a prompt the call needs fails validation: no caller gets silence."""
    text = (Path(__file__).parents[1] / "menus" / "menu.yaml").read_text(encoding="utf-8")
    text = text.replace("    goodbye: Cảm ơn bạn đã gọi.\n", "")
    path = tmp_path / "menu.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_menu(path)
    assert str(e.value) == f"{path}: prompts.vi.goodbye: missing translation"


def test_duplicate_key_and_unknown_placeholder_are_errors(tmp_path: Path) -> None:
    """Two options on one key, or a prompt with a placeholder nobody fills, are caught at load."""
    text = (Path(__file__).parents[1] / "menus" / "menu.yaml").read_text(encoding="utf-8")
    text = text.replace('{key: "6", id: disaster}', '{key: "5", id: disaster}')
    text = text.replace("goodbye: Thank you for calling.", "goodbye: Thank you {caller}.")
    path = tmp_path / "menu.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_menu(path)
    assert [f"{p.path}: {p.message}" for p in e.value.problems] == [
        "options[5].key: key '5' is used twice",
        "prompts.en.goodbye: placeholders ['caller']; this prompt takes none",
    ]


def test_a_date_by_month_name_needs_every_month_named(tmp_path: Path) -> None:
    """A language whose date wording uses {month_name} must name all twelve months: a caller must never hit a gap."""
    broken = tmp_path / "menu.yaml"
    broken.write_text(Path(MENU.source).read_text(encoding="utf-8").replace("    month.7: julio\n", ""),
                      encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_menu(broken)
    assert [str(p) for p in e.value.problems] == [f"{broken}: prompts.es.month.7: missing translation"]


@pytest.mark.parametrize("seed", ["0", "1", "2", "3"])
def test_two_options_said_one_foreign_is_unclear_in_every_process(seed: str) -> None:
    """A caller who names two options at the top menu, one of them the foreign-language line, is asked again, in
    every worker: the answer must not depend on the process's hash seed (one in two used to raise KeyError)."""
    import subprocess
    import sys

    code = "from menus import load_menu; print(load_menu().heard('孤独 外国語', options=True))"
    done = subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": seed, "PATH": ""},
                          capture_output=True, text=True, cwd=Path(__file__).parents[1], timeout=60)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "None", "")
