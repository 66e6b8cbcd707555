"""Tools for translators and voice actors: every prompt in every language as CSV, out and back in, and checks.

Import writes the texts back into the menu file with its comments and layout kept, and only after the whole result
has passed the same validation as `ivr config check`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from menus.menu import HOME, MenuFile, _check
from routing.configfile import ConfigError, Problem, load_model

# Voices we use whose names do not carry their language (Amazon Polly): the language each speaks.
POLLY = {"Tomoko-Neural": "ja-JP", "Kazuha-Neural": "ja-JP", "Takumi-Neural": "ja-JP", "Mizuki": "ja-JP",
         "Takumi": "ja-JP", "Joanna-Neural": "en-US", "Zhiyu-Neural": "cmn-CN", "Seoyeon-Neural": "ko-KR",
         "Camila-Neural": "pt-BR", "Lupe-Neural": "es-US"}


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def export(menu_file: Path, out: Path) -> int:
    """Write key, then one column per language; returns the number of prompts."""
    data = _yaml().load(menu_file.read_text(encoding="utf-8"))
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
    y = _yaml()
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
    problems = _check(spec, str(menu_file))
    if problems:
        raise ConfigError(problems)
    buf = io.StringIO()
    y.dump(data, buf)
    menu_file.write_text(buf.getvalue(), encoding="utf-8")
    return changed


def check(menu_file: Path) -> list[str]:
    """Missing translations and unusable placeholders, and voices that do not speak their language."""
    data = _yaml().load(menu_file.read_text(encoding="utf-8"))
    out = [str(p) for p in _check(load_model(menu_file, MenuFile, data), str(menu_file))]
    for code, lang in data["languages"].items():
        voice, say = str(lang["voice"]), str(lang["say"])
        family, _, name = voice.partition(".")
        speaks = name[: len(say)] if family == "Google" else POLLY.get(name)
        if speaks != say:
            out.append(f"{menu_file}: languages.{code}.voice: {voice} "
                       + (f"speaks {speaks}, not {say}" if speaks else f"is not a known voice for {say}"))
    return out
