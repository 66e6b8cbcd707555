"""The static fallback document (`ivr fallback export`): what a caller hears when this service cannot be reached at all,
followed by the Twilio stand-in as a TwiML Bin would serve it; and `ivr config check` saying when it is out of date."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring

from ivr.cli import main
from ivr.tools.fallback import record_file
from ivr.tools.standin import StandIn
from ivr.tools.transports import StaticDocument
from menus.menu import DEFAULT_FILE as MENU
from routing.decide import DEFAULT_FILE as ROUTING

TWENTY_FOUR_HOURS = {"0120-279-338": ("よりそいホットライン", "the Yorisoi Hotline"),
                     "0120-0-78310": ("24時間子供SOSダイヤル", "the 24-hour Children's SOS Dial"),
                     "0120-279-889": ("DV相談プラス", "DV Soudan Plus")}


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The service's state directory, where the last export is recorded."""
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def routing_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state: Path) -> Path:
    """The shipped routing file, copied, so a test may change it."""
    copy = tmp_path / "config" / "routing.yaml"
    copy.parent.mkdir()
    shutil.copy(ROUTING, copy)
    monkeypatch.setenv("IVR_ROUTING_FILE", str(copy))
    return copy


def exported(tmp_path: Path) -> bytes:
    out = tmp_path / "fallback.xml"
    assert main(["fallback", "export", "--out", str(out)]) == 0
    return out.read_bytes()


def test_the_caller_hears_110_119_and_the_lines_open_around_the_clock_then_the_call_ends(
        routing_copy: Path, tmp_path: Path) -> None:
    """With our host down, a caller still hears 110/119 and the 24-hour lines, in Japanese and English, then goodbye."""
    body = exported(tmp_path)
    doc = StaticDocument(body)
    result = StandIn(doc, "unused-token", "https://handler.twilio.invalid/twiml/EH0").call()
    heard = result.heard()
    assert heard[:3] == ["こちらは、孤独・孤立相談ダイヤルです。お電話ありがとうございます。",
                         "いま命の危険があるときは、すぐに110番か119番に電話してください。",
                         "申し訳ありません。ただいま、すべての相談員が対応中です。"]
    assert [line for line in heard if "電話番号" in line] == [
        f"{ja}、電話番号 {number} で相談できます。" for number, (ja, _) in TWENTY_FOUR_HOURS.items()]
    assert "In an emergency, call 110 for the police, or 119 for fire and ambulance." in result.heard("en")
    assert [line for line in result.heard("en") if line.startswith("You can call")] == [
        f"You can call {en} at {number}." for number, (_, en) in TWENTY_FOUR_HOURS.items()]
    assert heard[-1] == "Thank you for calling."
    assert [e.kind for e in result.events][-1] == "hangup"
    assert not result.stranded and not result.fallback_used
    assert len(doc.urls) == 2  # the document, then the status callback: the document asks for nothing else


def test_the_document_is_static_and_small(routing_copy: Path, tmp_path: Path) -> None:
    """Nothing in it points back at this service (which is down when it plays), and Twilio accepts its size."""
    body = exported(tmp_path)
    assert len(body) < 64 * 1024
    assert b"http" not in body
    assert [el.tag for el in fromstring(body)][-1] == "Hangup"
    assert {el.tag for el in fromstring(body)} == {"Say", "Hangup"}


def test_config_check_warns_when_the_referral_lines_changed_since_the_export(
        routing_copy: Path, state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator who changed a referral line is told the hosted fallback document is out of date."""
    exported(tmp_path)
    record = record_file(state, routing_copy)
    assert record.is_file() and record.parent == state
    capsys.readouterr()
    assert main(["config", "check", "--allow-warnings"]) == 0
    assert "fallback document" not in capsys.readouterr().err
    text = routing_copy.read_text(encoding="utf-8")
    routing_copy.write_text(text.replace('number: "0120-279-889"', 'number: "0120-279-880"'), encoding="utf-8")
    assert main(["config", "check"]) == 3
    err = capsys.readouterr().err
    assert f"{routing_copy}: the fallback document would differ from the one last exported" in err
    exported(tmp_path)
    capsys.readouterr()
    main(["config", "check", "--allow-warnings"])
    assert "fallback document" not in capsys.readouterr().err


def test_an_operator_can_listen_to_an_exported_document(routing_copy: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Before uploading it, an operator hears what a caller would, and the exit status says the caller is not left
    in silence."""
    out = tmp_path / "fallback.xml"
    assert main(["fallback", "export", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["fallback", "listen", str(out)]) == 0
    heard = capsys.readouterr().out.splitlines()
    assert heard[1] == "  [say ja-JP] いま命の危険があるときは、すぐに110番か119番に電話してください。"
    assert heard[-2:] == ["  [say en-US] Thank you for calling.", "  [hangup]"]
    out.write_text('<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>', encoding="utf-8")
    assert main(["fallback", "listen", str(out)]) == 1  # a document that says nothing strands the caller


def test_the_export_writes_nothing_beside_the_config(state: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The config directory is often a read-only mount (and here, the repository): the export and the check that
    compares against it leave it as it was, and still tell when the document changed."""
    config_dirs = (ROUTING.parent, MENU.parent)
    before = listing(config_dirs)
    try:
        exported(tmp_path)
        assert main(["fallback", "export"]) == 0  # to standard output
        assert main(["config", "check", "--allow-warnings"]) == 0
        assert "fallback document" not in capsys.readouterr().err
        assert listing(config_dirs) - before == set()
        assert [p.name for p in state.iterdir()] == [record_file(state, ROUTING).name]
    finally:  # what an export left in the repository goes
        for p in listing(config_dirs) - before:
            if p.name.startswith("fallback"):
                p.unlink()


def listing(dirs: tuple[Path, ...]) -> set[Path]:
    """The files under these directories, but Python's caches."""
    return {p for d in dirs for p in d.rglob("*") if "__pycache__" not in p.parts}


def test_an_export_that_cannot_be_recorded_says_so_in_one_line(routing_copy: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A state directory the service cannot make stops the export before it writes, with one line naming it."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("IVR_STATE_DIR", str(blocker / "state"))
    out = tmp_path / "fallback.xml"
    assert main(["fallback", "export", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ivr fallback export: cannot record the export in {blocker / 'state'} (IVR_STATE_DIR): ")
    assert (len(err.splitlines()), out.exists()) == (1, False)


def test_an_out_file_that_cannot_be_written_says_so_in_one_line(routing_copy: Path, state: Path, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped --out directory is one line, and no export is recorded."""
    out = tmp_path / "missing" / "fallback.xml"
    assert main(["fallback", "export", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ivr fallback export: cannot write {out}: ")
    assert (len(err.splitlines()), list(state.glob("*.sha256"))) == (1, [])
