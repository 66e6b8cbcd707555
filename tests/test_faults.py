"""Faults: Redis killed before and during calls, the RQ worker away, a gunicorn worker killed mid-request, a broken
config written under load, and the fallback URL with nothing left but the boot config."""

from __future__ import annotations

import json
import sys

import pytest
import structlog

from ivr import logs


def test_a_log_line_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each JSON log line reaches stderr in one write, so lines of two gunicorn workers sharing it never run
    together (with PYTHONUNBUFFERED a line and its newline were two writes)."""
    writes: list[str] = []

    class Stderr:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return False

    saved = structlog.get_config()
    monkeypatch.setattr(sys, "stderr", Stderr())
    try:
        logs.configure("info", "json")
        structlog.get_logger("ivr").info("webhook", step="menu")
    finally:
        structlog.configure(**saved)
    assert len(writes) == 1 and writes[0].endswith("}\n")
    assert json.loads(writes[0])["step"] == "menu"
