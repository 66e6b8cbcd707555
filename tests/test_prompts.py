"""Translator tooling: every prompt out to CSV and back, validated before anything is written."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from ivr.cli import main

ROOT = Path(__file__).parents[1]


@pytest.fixture
def menu(tmp_path: Path) -> Path:
    path = tmp_path / "menu.yaml"
    shutil.copyfile(ROOT / "menus" / "menu.yaml", path)
    return path


def test_every_prompt_key_exists_in_every_language() -> None:
    """No caller may get silence or the wrong language: the shipped menu has every call prompt in every language."""
    assert main(["prompts", "check"]) == 0


def test_export_then_import_changes_nothing(menu: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CSV exported and read back unchanged leaves the menu file byte for byte as it was (comments kept)."""
    before = menu.read_bytes()
    assert main(["prompts", "export", "--menu", str(menu), "--out", str(tmp_path / "p.csv")]) == 0
    with (tmp_path / "p.csv").open(encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["key", "ja", "en", "zh", "ko", "vi", "pt", "es", "fil", "id", "th", "ne", "easy"]
    assert ["goodbye", "お電話ありがとうございました。", "Thank you for calling.", "感谢您的来电。", "전화해 주셔서 감사합니다.",
            "Cảm ơn bạn đã gọi.", "Obrigado por ligar.", "Gracias por llamar.", "Salamat sa iyong pagtawag.",
            "Terima kasih telah menelepon.", "ขอบคุณที่โทรมา", "फोन गर्नुभएकोमा धन्यवाद।", "でんわを ありがとう ございました。"] in rows
    assert main(["prompts", "import", "--menu", str(menu), str(tmp_path / "p.csv")]) == 0
    assert menu.read_bytes() == before


def test_import_applies_a_translation(menu: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A translator's corrected line goes into the menu file, and the rest of the file is untouched."""
    table = tmp_path / "fix.csv"
    table.write_text("key,en\ngoodbye,Thank you for calling. Take care.\n", encoding="utf-8")
    before = menu.read_text(encoding="utf-8")
    assert main(["prompts", "import", "--menu", str(menu), str(table)]) == 0
    assert "prompts.en.goodbye (line 2)" in capsys.readouterr().out
    after = menu.read_text(encoding="utf-8")
    assert after == before.replace("    goodbye: Thank you for calling.\n",
                                   "    goodbye: Thank you for calling. Take care.\n", 1)


def test_import_refuses_a_broken_translation(menu: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A referral line that lost its {number}, or an unknown language column, is refused and nothing is written."""
    before = menu.read_bytes()
    table = tmp_path / "bad.csv"
    table.write_text('key,es\nreferral,"También puede llamar a {name}."\n', encoding="utf-8")
    assert main(["prompts", "import", "--menu", str(menu), str(table)]) == 1
    assert "prompts.es.referral: placeholders ['name']; this prompt takes ['name', 'number']" in (
        capsys.readouterr().err)
    table.write_text("key,klingon\ngoodbye,Qapla'\n", encoding="utf-8")
    assert main(["prompts", "import", "--menu", str(menu), str(table)]) == 1
    assert "header must be 'key' then languages from: ja, en, zh" in capsys.readouterr().err
    assert menu.read_bytes() == before


def test_check_finds_a_voice_in_the_wrong_language(menu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Korean line given a Chinese voice would speak the wrong language: the check names it."""
    menu.write_text(menu.read_text(encoding="utf-8").replace("voice: Polly.Seoyeon-Neural", "voice: Polly.Zhiyu-Neural"),
                    encoding="utf-8")
    assert main(["prompts", "check", "--menu", str(menu)]) == 1
    assert f"{menu}: languages.ko.voice: Polly.Zhiyu-Neural speaks cmn-CN, not ko-KR" in capsys.readouterr().out


def test_check_finds_a_missing_under18_wording(menu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A child on the under-18 line would hear the adult emergency notice: the check names the missing line."""
    text = menu.read_text(encoding="utf-8")
    line = "    emergency_short@under18: いのちが あぶない ときは、すぐに 110ばんか 119ばんに でんわしてね。\n"
    assert line in text
    menu.write_text(text.replace(line, ""), encoding="utf-8")
    assert main(["prompts", "check", "--menu", str(menu)]) == 1
    problems = [x for x in capsys.readouterr().out.splitlines() if "@under18" in x]
    assert problems == [f"{menu}: prompts.ja.emergency_short@under18: missing: this option has its own wording for "
                        "other lines after the menu, and its callers would hear the general wording here"]


@pytest.fixture
def audio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped recordings that the commands use (IVR_AUDIO_DIR)."""
    path = tmp_path / "audio"
    shutil.copytree(ROOT / "menus" / "audio", path)
    monkeypatch.setenv("IVR_AUDIO_DIR", str(path))
    return path


def test_check_lists_missing_recordings_and_placeholders(audio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nepali is spoken only from recordings: a missing clip is a problem for both checks (a caller would hear
    English); the placeholders still to be replaced by a native speaker are listed."""
    assert main(["prompts", "check"]) == 0
    assert "placeholder recordings to be replaced by a native speaker's" in capsys.readouterr().out
    (audio / "ne" / "goodbye.wav").unlink()
    (audio / "ne" / "name.yorisoi.wav").unlink()
    assert main(["prompts", "check"]) == 1
    out = capsys.readouterr().out
    assert f"{audio / 'ne'}: goodbye.wav: recording does not exist" in out
    assert f"{audio / 'ne'}: name.yorisoi.wav: recording does not exist" in out
    assert main(["config", "check", "--allow-warnings"]) == 1
    assert f"{audio / 'ne'}: goodbye.wav: recording does not exist, and ne has no voice" in capsys.readouterr().err


def test_record_makes_placeholders_for_missing_clips_only(audio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr prompts record` speaks the missing clips with espeak-ng at phone quality and lists them as
    placeholders; the clips already there are left alone."""
    import wave

    kept = (audio / "ne" / "wait.wav").read_bytes()
    (audio / "ne" / "goodbye.wav").unlink()
    (audio / "ne" / "PLACEHOLDERS.txt").write_text("# none yet\n", encoding="utf-8")
    assert main(["prompts", "record", "--lang", "ne"]) == 0
    assert "1 placeholder recordings written" in capsys.readouterr().out
    with wave.open(str(audio / "ne" / "goodbye.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2) and w.getnframes() > 4000
    assert (audio / "ne" / "wait.wav").read_bytes() == kept
    listed = (audio / "ne" / "PLACEHOLDERS.txt").read_text(encoding="utf-8")
    assert "goodbye\tफोन गर्नुभएकोमा धन्यवाद।" in listed and "\nwait\t" not in listed
    assert main(["prompts", "check"]) == 0


def test_check_notes_voices_that_lack_a_feature(audio: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Operators learn that zh/ko callers hear phone numbers digit by digit and that Nepali is recordings only."""
    menu = ROOT / "menus" / "menu.yaml"
    assert main(["prompts", "check"]) == 0
    notes = [x for x in capsys.readouterr().out.splitlines() if ": languages." in x]
    assert notes == [
        f"{menu}: languages.zh: phone numbers are read digit by digit: its voice does not support say-as telephone",
        f"{menu}: languages.ko: phone numbers are read digit by digit: its voice does not support say-as telephone",
        f"{menu}: languages.ne: no voice: spoken from recordings only ({audio / 'ne'}); a missing recording is said "
        "in English",
    ]
