"""The hold sound callers hear while they wait in a queue, made here so it is ours to ship (the project's licence).

Silence on a phone line sounds like a dropped call, so the wait round plays this between its reassurance lines. It is
a slow, soft chime: two falling phrases of three notes, E5 D5 C5 then D5 C5 A4, one a second, each a pure sine that
swells in over 40 ms and dies away gently (a struck bar, not a beep), the second phrase's last note ringing through
the two-second rest. Notes overlap, so the sound never drops below 1% of full scale for more than a moment; the loop
starts on a note's soft attack and ends on a short fade, so it repeats without a click.

Chosen for a phone line: 8 kHz, 16-bit mono PCM, as the recordings are; every note between 440 and 660 Hz, inside the
narrow telephone band, clear of the DTMF key tones (697 Hz and up), and none a steady 400 Hz (Japan's ringing and
busy tones); peaks at -12 dBFS, so a codec never clips it. Pure arithmetic (`math`, no randomness), so the same
bytes come out everywhere: a test checks the shipped `menus/audio/hold.wav` against a fresh one.
"""

from __future__ import annotations

import array
import io
import math
import sys
import wave
from pathlib import Path

from ivr.state.recordings import HOLD_FILE, HOLD_SECONDS

RATE = 8000  # Hz: a phone call's rate, as the recordings are written at
PEAK_DBFS = -12.0  # the loudest sample, below full scale
ATTACK = 0.04  # seconds a note takes to swell in (a raised cosine: no click)
DECAY = 1.2  # seconds for a note to fall to 1/e of its peak
RING = 4.0  # seconds a note sounds at most (by then it has fallen to 4% of its peak)
RELEASE = 0.3  # seconds over which a note is faded out at its end (its RING, or the loop's end: no click there)
# (onset in seconds, frequency in Hz, loudness relative to the others): C major pentatonic, falling, calm
NOTES = (
    (0.0, 659.26, 1.0), (1.0, 587.33, 0.85), (2.0, 523.25, 0.9),  # E5 D5 C5
    (4.0, 587.33, 0.85), (5.0, 523.25, 0.8), (6.0, 440.0, 0.95),  # D5 C5 A4, then a rest it rings through
)


def _fade(t: float, length: float) -> float:
    """0 at t=0 rising to 1 at t=length, along half a cosine."""
    return 0.5 - 0.5 * math.cos(math.pi * min(max(t / length, 0.0), 1.0))


def samples() -> array.array[int]:
    """One loop of the hold sound: HOLD_SECONDS of 16-bit samples at RATE."""
    total = HOLD_SECONDS * RATE
    mix = [0.0] * total
    for onset, freq, level in NOTES:
        start = round(onset * RATE)
        length = min(round(RING * RATE), total - start)
        for i in range(length):
            t = i / RATE
            envelope = _fade(t, ATTACK) * math.exp(-max(t - ATTACK, 0.0) / DECAY) * _fade((length - i) / RATE, RELEASE)
            mix[start + i] += level * envelope * math.sin(2 * math.pi * freq * t)
    scale = 32767 * 10 ** (PEAK_DBFS / 20) / max(abs(x) for x in mix)
    return array.array("h", (round(x * scale) for x in mix))


def wav_bytes() -> bytes:
    """The hold sound as a WAV file: 8 kHz, 16-bit mono PCM."""
    pcm = samples()
    if sys.byteorder == "big":  # WAV samples are little-endian
        pcm.byteswap()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def write(audio_dir: Path, out: str | Path | None = None) -> Path:
    """Write the hold sound to `out`, else to hold.wav in `audio_dir` where the service finds it (the folder made if
    need be); the path written."""
    path = Path(out) if out else audio_dir / HOLD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes())
    return path
