"""Tools for translators and voice actors: every prompt in every language as CSV, out and back in, and checks.

Import writes the texts back into the menu file with its comments and layout kept, and only after the whole result
has passed the same validation as `ivr config check`.
"""

from __future__ import annotations

import array
import csv
import io
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from common.configfile import ConfigError, Problem, load_model
from common.facts import HOME
from ivr.call.speaking import clip_texts, missing_audio
from ivr.state.recordings import PLACEHOLDERS, Recordings
from menus import Menu, MenuFile, load_menu, missing_variants
from menus import check as check_menu_file
from routing.check import load_routing
from routing.model import Referral

PHONE_RATE = 8000  # Hz: what a phone call carries; placeholder clips are written at it, 16-bit mono

# Voices we use whose names do not carry their language (Amazon Polly): the language each speaks.
POLLY = {"Tomoko-Neural": "ja-JP", "Kazuha-Neural": "ja-JP", "Takumi-Neural": "ja-JP", "Mizuki": "ja-JP",
         "Takumi": "ja-JP", "Joanna-Neural": "en-US", "Zhiyu-Neural": "cmn-CN", "Seoyeon-Neural": "ko-KR",
         "Camila-Neural": "pt-BR", "Lupe-Neural": "es-US"}


def referrals_of(menu: Menu, routing_file: Path) -> list[Referral]:
    """The other hotlines callers are told about, whose names are spoken in the prompts too."""
    return load_routing(routing_file, menu.layouts).spec.referrals


def placeholders(audio_dir: Path, lang: str) -> list[str]:
    """The clips in `lang` still on a placeholder recording, waiting for a native speaker's."""
    listing = audio_dir / lang / PLACEHOLDERS
    if not listing.exists():
        return []
    return [line.split("\t")[0] for line in listing.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")]


def record(menu_file: Path, routing_file: Path, audio_dir: Path, lang: str, *, voice: str | None = None,
           replace: bool = False, espeak: str = "espeak-ng") -> list[str]:
    """Placeholder recordings with espeak-ng for every clip `lang` lacks (all of them with `replace`), listed in
    PLACEHOLDERS.txt as clips to be replaced by a native speaker's recording. Returns the clips written."""
    menu = load_menu(menu_file)
    if lang not in menu.spec.languages:
        raise ConfigError([Problem(str(menu_file), "languages", f"'{lang}' is not a configured language")])
    texts = clip_texts(menu, referrals_of(menu, routing_file), lang)
    folder = audio_dir / lang
    folder.mkdir(parents=True, exist_ok=True)
    speaker = voice or menu.language(lang).say.split("-")[0]
    written = []
    for clip, text in texts.items():
        target = folder / f"{clip}.wav"
        if target.exists() and not replace:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "clip.wav"
            # the words go in on stdin, never as an argument
            subprocess.run([espeak, "-v", speaker, "-w", str(raw), "--stdin"], input=text.encode(),  # noqa: S603
                           check=True, capture_output=True)
            _to_phone_rate(raw, target)
        written.append(clip)
    done = set(placeholders(audio_dir, lang)) | set(written)
    listing = ["# Placeholder recordings made by `ivr prompts record` with espeak-ng. Replace each with a native",
               "# speaker's recording of the same words (8 kHz or better, mono) and delete its line here.",
               *(f"{clip}\t{texts[clip]}" for clip in texts if clip in done)]
    (folder / PLACEHOLDERS).write_text("\n".join(listing) + "\n", encoding="utf-8")
    return written


def _to_phone_rate(source: Path, target: Path) -> None:
    """A mono 16-bit WAV resampled (linear interpolation) to 8 kHz: smaller, and all a phone line carries."""
    with wave.open(str(source)) as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        samples = array.array("h", w.readframes(w.getnframes()))
    if width != 2 or channels != 1:
        raise ValueError(f"{source}: expected 16-bit mono, got {8 * width}-bit with {channels} channels")
    n = max(1, len(samples) * PHONE_RATE // rate)
    out = array.array("h", bytes(2 * n))
    for i in range(n):
        x = i * rate / PHONE_RATE
        j = min(int(x), len(samples) - 1)
        k = min(j + 1, len(samples) - 1)
        out[i] = int(samples[j] + (samples[k] - samples[j]) * (x - j))
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(PHONE_RATE)
        w.writeframes(out.tobytes())


def round_trip_yaml() -> YAML:
    """ruamel.yaml set to write a config file back with its comments, quotes and layout kept."""
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def export(menu_file: Path, out: Path) -> int:
    """Write key, then one column per language; returns the number of prompts."""
    data = round_trip_yaml().load(menu_file.read_text(encoding="utf-8"))
    langs = list(data["languages"])
    prompts = data["prompts"]
    keys = list(dict.fromkeys(k for lang in [HOME, *langs] for k in prompts.get(lang, {})))
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", *langs])
        for k in keys:
            w.writerow([k, *(prompts.get(lang, {}).get(k, "") for lang in langs)])
    return len(keys)


def import_csv(menu_file: Path, table: Path) -> list[str]:
    """Put the CSV's non-empty cells into the menu file; returns what changed. Raises ConfigError, changing nothing,
    when the CSV or the resulting menu is not valid."""
    y = round_trip_yaml()
    data: Any = y.load(menu_file.read_text(encoding="utf-8"))
    langs = list(data["languages"])
    with table.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        if not header or header[0] != "key" or any(h not in langs for h in header[1:]):
            raise ConfigError([Problem(str(table), "line 1", f"header must be 'key' then languages from: "
                                       f"{', '.join(langs)} (got {', '.join(header) or 'nothing'})")])
        changed = []
        for n, row in enumerate(reader, start=2):
            if not row or not row[0].strip():
                continue
            key = row[0].strip()
            for lang, text in zip(header[1:], row[1:], strict=False):
                text = text.strip()
                table_ = data["prompts"].setdefault(lang, {})
                if text and table_.get(key) != text:
                    table_[key] = text
                    changed.append(f"prompts.{lang}.{key} (line {n})")
    spec = load_model(menu_file, MenuFile, data)
    problems = check_menu_file(spec, str(menu_file))
    if problems:
        raise ConfigError(problems)
    buf = io.StringIO()
    y.dump(data, buf)
    menu_file.write_text(buf.getvalue(), encoding="utf-8")
    return changed


def check(menu_file: Path, routing_file: Path, audio_dir: Path) -> tuple[list[str], list[str]]:
    """(problems, notes): missing translations, an option's own wording (under-18) missing for some line after the
    menu, unusable placeholders, voices that do not speak their language, recordings a recorded language lacks;
    notes list the languages whose voice lacks something the prompts use, and the placeholder recordings still to be
    replaced."""
    data = round_trip_yaml().load(menu_file.read_text(encoding="utf-8"))
    spec = load_model(menu_file, MenuFile, data)
    out = [str(p) for p in check_menu_file(spec, str(menu_file))]
    out += [f"{menu_file}: {path}: missing: this option has its own wording for other lines after the menu, and its "
            "callers would hear the general wording here" for path in missing_variants(spec)]
    for code, lang in spec.languages.items():
        if lang.voice is None:
            continue
        family, _, name = lang.voice.partition(".")
        speaks = name[: len(lang.say)] if family == "Google" else POLLY.get(name)
        if speaks != lang.say:
            out.append(f"{menu_file}: languages.{code}.voice: {lang.voice} "
                       + (f"speaks {speaks}, not {lang.say}" if speaks else f"is not a known voice for {lang.say}"))
    notes = []
    for code, lang in spec.languages.items():
        if lang.voice is None:
            notes.append(f"{menu_file}: languages.{code}: no voice: spoken from recordings only ({audio_dir / code}); "
                         "a missing recording is said in English")
        elif not lang.telephone and any("{number}" in text for text in spec.prompts.get(code, {}).values()):
            notes.append(f"{menu_file}: languages.{code}: phone numbers are read digit by digit: its voice does not "
                         "support say-as telephone")
    if not out:
        menu = Menu(spec, str(menu_file))
        found = Recordings(audio_dir, [code for code, lang in spec.languages.items() if lang.recorded])
        for code, clips in missing_audio(menu, referrals_of(menu, routing_file), found).items():
            out += [f"{audio_dir / code}: {clip}.wav: recording does not exist" for clip in clips]
            waiting = placeholders(audio_dir, code)
            if waiting:
                notes.append(f"{audio_dir / code}: {len(waiting)} placeholder recordings to be replaced by a "
                             f"native speaker's (listed in {PLACEHOLDERS})")
    return out, notes
