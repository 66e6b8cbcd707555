"""Recorded prompts: which clips exist under the audio folder, and the URL Twilio plays each from.

Clips live in `<audio dir>/<language>/<clip>.wav` (or .mp3), next to the menu file by default (`menus/audio/`); the
hold sound callers hear while they wait is `<audio dir>/hold.wav` (made by `ivr prompts hold`). Each URL carries a
hash of the file's content (`?v=<sha256 prefix>`), the same on every instance, so a recording replaced (and the config
reloaded) is fetched again despite long caching.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

EXTENSIONS = (".wav", ".mp3")
PLACEHOLDERS = "PLACEHOLDERS.txt"  # lists clips that are to be replaced by a native speaker's recording
HOLD_FILE = "hold.wav"  # the hold sound, at the top of the audio folder
HOLD_SECONDS = 8  # how long one play of the hold sound lasts (the shipped loop's length): waits are sized by it


def _versioned(path: Path) -> str:
    """The file's name with a hash of its content: `clip.wav?v=<sha256 prefix>`."""
    return f"{path.name}?v={hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


class Recordings:
    """The clips and the hold sound found under `root` when the config was loaded; each is checked again when it is
    played."""

    def __init__(self, root: Path | None, languages: Iterable[str]):
        self.root = root
        self.files: dict[tuple[str, str], str] = {}  # (language, clip) -> file name?v=content hash
        for lang in languages:
            folder = root / lang if root is not None else None
            if folder is None or not folder.is_dir():
                continue
            for entry in sorted(folder.iterdir()):
                if entry.suffix in EXTENSIONS and entry.is_file() and (lang, entry.stem) not in self.files:
                    self.files[(lang, entry.stem)] = _versioned(entry)
        hold = root / HOLD_FILE if root is not None else None
        self.hold_file = _versioned(hold) if hold is not None and hold.is_file() else None  # hold.wav?v=content hash

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self.files

    def find(self, lang: str, clips: Iterable[str], base: Callable[[], str]) -> list[str] | None:
        """URLs for every clip, or None when any of them is not on disk now."""
        urls = []
        for clip in clips:
            name = self.files.get((lang, clip))
            if name is None or self.root is None or not os.path.isfile(self.root / lang / name.split("?")[0]):
                return None  # never recorded, or removed since the config was loaded
            urls.append(f"{base()}/{lang}/{name}")
        return urls

    def hold(self, base: Callable[[], str]) -> str | None:
        """The hold sound's URL, or None when there was none when the config was loaded or it is not on disk now."""
        if self.hold_file is None or self.root is None or not os.path.isfile(self.root / HOLD_FILE):
            return None
        return f"{base()}/{self.hold_file}"
