"""The hold sound callers hear in a queue: made by our own code, reproducible to the byte, fit for a phone line, served
like the recordings (or from IVR_HOLD_URL), and offered to the call flow through its adapters."""

from __future__ import annotations

import array
import hashlib
import io
import os
import shutil
import sys
import wave
from pathlib import Path
from typing import Any

import pytest

from ivr.cli import main
from ivr.settings import SettingsError, load_settings
from ivr.state.recordings import HOLD_SECONDS, Recordings
from tests.support import BASE, AppFactory

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_AUDIO = ROOT / "menus" / "audio"
SHIPPED = SHIPPED_AUDIO / "hold.wav"
FULL_SCALE = 32768
QUIET = 0.01 * FULL_SCALE  # a sample this close to zero is near silence
CDN_HOLD = "https://cdn.example.jp/sounds/hold.wav"


def version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def pcm(data: bytes) -> tuple[tuple[int, int, int, str], float, array.array[int]]:
    """The WAV file's (rate, channels, bytes per sample, compression), its length in seconds, and its samples."""
    with wave.open(io.BytesIO(data), "rb") as w:
        params = (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getcomptype())
        seconds, frames = w.getnframes() / w.getframerate(), w.readframes(w.getnframes())
    samples = array.array("h", frames)
    if sys.byteorder == "big":  # WAV samples are little-endian
        samples.byteswap()
    return params, seconds, samples


def longest_quiet(samples: array.array[int]) -> int:
    """The longest run of near-silent samples."""
    run = longest = 0
    for x in samples:
        run = run + 1 if abs(x) < QUIET else 0
        longest = max(longest, run)
    return longest


@pytest.fixture
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell cannot leak IVR_ or TWILIO_ settings into a test of the settings."""
    for name in [n for n in os.environ if n.startswith(("IVR_", "TWILIO_"))]:
        monkeypatch.delenv(name)


def test_shipped_hold_sound_is_made_by_our_own_code(tmp_path: Path) -> None:
    """A hold sound of unknown origin (or licence) could ship, or a change to the generator go unnoticed."""
    assert main(["prompts", "hold", "--out", str(tmp_path / "hold.wav")]) == 0
    assert SHIPPED.read_bytes() == (tmp_path / "hold.wav").read_bytes()


def test_hold_command_writes_into_the_audio_folder_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              no_environment: None) -> None:
    """`ivr prompts hold` would write where the service does not look for it (IVR_AUDIO_DIR, else menus/audio/)."""
    monkeypatch.setenv("IVR_AUDIO_DIR", str(tmp_path / "audio"))
    assert main(["prompts", "hold"]) == 0
    assert SHIPPED.read_bytes() == (tmp_path / "audio" / "hold.wav").read_bytes()


def test_hold_sound_suits_a_phone_line() -> None:
    """A caller on hold would hear a gap that sounds like a dropped call, a click at each repeat, or distortion."""
    params, seconds, samples = pcm(SHIPPED.read_bytes())
    assert (8000, 1, 2, "NONE") == params  # 8 kHz, mono, 16-bit PCM
    assert 6 <= seconds <= 10 and seconds == HOLD_SECONDS  # the flow sizes its waits by HOLD_SECONDS
    peak = max(abs(x) for x in samples)
    assert 0.2 * FULL_SCALE < peak < 0.3 * FULL_SCALE  # about -12 dBFS: audible, far from clipping
    looped = samples + samples  # as <Play loop> repeats it
    assert longest_quiet(looped) < 1.5 * 8000
    assert abs(samples[0]) < QUIET and abs(samples[-1]) < QUIET  # soft at both ends: no click where it repeats


def test_recordings_know_the_hold_sound_while_it_is_on_disk(tmp_path: Path) -> None:
    """The flow would play a hold sound that is gone (Twilio then plays nothing: silence), or miss one that is there."""
    shutil.copy(SHIPPED, tmp_path / "hold.wav")
    recordings = Recordings(tmp_path, [])
    assert f"/audio/hold.wav?v={version(SHIPPED.read_bytes())}" == recordings.hold(lambda: "/audio")
    (tmp_path / "hold.wav").unlink()
    assert recordings.hold(lambda: "/audio") is None
    assert Recordings(tmp_path, []).hold(lambda: "/audio") is None
    assert Recordings(None, []).hold(lambda: "/audio") is None


def test_hold_sound_is_served_unsigned_with_long_caching(make_app: AppFactory) -> None:
    """Twilio's media fetcher (which does not sign) would get a 403 or 404, or fetch the sound again on every wait."""
    client = make_app().test_client()
    with client.get(f"/audio/hold.wav?v={version(SHIPPED.read_bytes())}") as got:
        assert (200, True) == (got.status_code, got.mimetype in ("audio/wav", "audio/x-wav"))
        assert SHIPPED.read_bytes() == got.data
        assert {"public", "max-age=604800"} <= {part.strip() for part in got.headers["Cache-Control"].split(",")}
        etag = got.headers["ETag"]
    with client.get("/audio/hold.wav", headers={"If-None-Match": etag}) as again:
        assert 304 == again.status_code
    for bad in ("/audio/hold.mp3", "/audio/nothing.wav", "/audio/menu.yaml", "/audio/hold.wav/x"):
        with client.get(bad) as refused:
            assert 404 == refused.status_code, bad


def hold_url(app: Any) -> str | None:
    """What the call flow is told for a request to this app."""
    with app.test_request_context("/voice/wait", base_url=BASE):
        url: str | None = app.extensions["ivr.flows"].adapters.hold_url()
        return url


def test_flow_is_offered_our_hold_sound_by_default(make_app: AppFactory) -> None:
    """Callers in a queue would hear silence while a hold sound sits in the audio folder."""
    expected = f"{BASE}/audio/hold.wav?v={version(SHIPPED.read_bytes())}"
    assert expected == hold_url(make_app())
    assert expected.replace(f"{BASE}/audio", "https://cdn.example.jp/audio") == hold_url(
        make_app(IVR_AUDIO_URL="https://cdn.example.jp/audio"))  # from where the recordings are fetched


def test_flow_is_offered_the_hold_url_setting(make_app: AppFactory) -> None:
    """An operator's own hold sound (IVR_HOLD_URL) would be ignored in favour of ours."""
    assert CDN_HOLD == hold_url(make_app(IVR_HOLD_URL=f" {CDN_HOLD} "))


def test_no_hold_sound_is_offered_without_one(make_app: AppFactory, tmp_path: Path) -> None:
    """With no hold.wav in the audio folder the flow would be sent a URL that answers 404 (silence for the caller)."""
    audio = tmp_path / "audio"
    shutil.copytree(SHIPPED_AUDIO, audio)
    (audio / "hold.wav").unlink()
    app = make_app(IVR_AUDIO_DIR=str(audio))
    assert hold_url(app) is None
    with app.test_client().get("/audio/hold.wav") as got:
        assert 404 == got.status_code


@pytest.mark.parametrize("value", ["ftp://x", "not a url", "https://", "https://cdn.example.jp/", "https://cdn .jp/a"])
def test_wrong_hold_url_stops_the_service_naming_it(value: str, no_environment: None) -> None:
    """A mistyped IVR_HOLD_URL would boot, and every caller in a queue would hear silence where the sound should be."""
    with pytest.raises(SettingsError) as caught:
        load_settings({"TWILIO_AUTH_TOKEN": "tok", "IVR_HOLD_URL": value})
    expected = (f"IVR_HOLD_URL: {value.strip()!r} is not the web address of a sound file: write https:// (or "
                "http://), a host and the file's path, e.g. https://cdn.example.jp/hold.wav")
    assert (expected, "IVR_HOLD_URL") == (str(caught.value), caught.value.variable)


def test_hold_url_setting_is_optional(no_environment: None) -> None:
    """The service would demand a hold URL, or keep stray spaces that Twilio cannot fetch."""
    assert load_settings({"TWILIO_AUTH_TOKEN": "tok"}).hold_url is None
    assert CDN_HOLD == load_settings({"TWILIO_AUTH_TOKEN": "tok", "IVR_HOLD_URL": f"  {CDN_HOLD}\n"}).hold_url
