"""Golden transcripts: what a caller hears on the calls whose wording matters most, kept as reviewed text in
tests/golden/. `make golden` writes them again from the current config; a change shows up as a readable diff.

Each script is a call placed through the stand-in on an in-process app (embedded store, frozen clock), as
`ivr call --at ... --press ...` would place it.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from common.facts import parse_instant
from ivr.app import create_app
from ivr.clock import Clock
from ivr.tools.standin import InProcess, StandIn

GOLDEN = Path(__file__).with_name("golden")
BASE = "https://hotline.example.jp"


@dataclass(frozen=True)
class Script:
    """One call: when, what the caller presses or says, and how the partners' queues end."""

    at: str
    keys: list[str]
    about: str
    outcome: dict[str, object] = field(default_factory=dict)


SCRIPTS = {
    "busy-ending": Script("2025-05-03T03:00:00+09:00", ["1", "-"],
                          "Every partner of the general line is full: the ending that holds the caller.",
                          {"queue_result": "queue-full"}),
    "closed": Script("2026-11-23T12:00:00+09:00", [], "Outside every window: the closed message, in Japanese and "
                     "English."),
    "under18": Script("2025-05-03T03:00:00+09:00", ["2", "-"], "An under-18 caller waits, every line is full, and "
                      "the ending follows: plain words all the way.", {"queue_result": "queue-full"}),
    "under18-line-closed": Script("2026-12-26T09:00:00+09:00", ["2"], "An under-18 caller presses 2 while the "
                                  "under-18 line is closed: put through to the general line, in plain words."),
    "crisis": Script("2025-05-03T03:00:00+09:00", ["say:もう死にたい@0.9"], "A caller says 死にたい at the menu."),
}


def render(name: str) -> str:
    """The transcript of one script's call, as `ivr call` prints it, under a header saying what it is."""
    script = SCRIPTS[name]
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as state:
        app = create_app({"TWILIO_AUTH_TOKEN": token, "IVR_LOG_LEVEL": "warning", "IVR_STATE_DIR": state,
                          "CLOCK": Clock(parse_instant(script.at), frozen=True)})
        lines: list[str] = []
        standin = StandIn(InProcess(app), token, BASE, keys=list(script.keys), caller="anonymous",
                          printer=lambda e: lines.append(str(e)), **script.outcome)  # type: ignore[arg-type]
        standin.call()
    header = [f"# {script.about}", f"# ivr call --at {script.at} --press {' '.join(script.keys) or '(nothing)'}"
              + "".join(f" --{k.replace('_', '-')} {v}" for k, v in script.outcome.items())]
    return "\n".join([*header, *lines]) + "\n"


def main() -> None:
    """Write every golden transcript again."""
    GOLDEN.mkdir(exist_ok=True)
    for name in SCRIPTS:
        (GOLDEN / f"{name}.txt").write_text(render(name), encoding="utf-8")
        print(f"wrote {GOLDEN / name}.txt")


if __name__ == "__main__":
    main()
