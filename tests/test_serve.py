"""`ivr serve`: real gunicorn workers, signed calls over HTTP, metrics summed across workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.tools.standin import OverHttp, StandIn
from tests.support import CALLER, TOKEN, free_port, running_server


@pytest.fixture
def server(redis_url: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    env = {"REDIS_URL": redis_url, "IVR_CLOCK": "2025-05-03T03:00:00+09:00",
           "IVR_ENTRY_NUMBERS": "+81120494949=0120,+815012349999=9999"}
    with running_server(tmp_path, env, workers=2) as (_, base):
        yield base, tmp_path / "server.log"
    server_log = (tmp_path / "server.log").read_text()
    assert CALLER not in server_log and CALLER[1:] not in server_log



def workers_seen(log: Path) -> set[int]:
    """The gunicorn workers that have answered a webhook, from the canonical log lines."""
    lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    return {e["worker"] for e in lines if e.get("event") == "webhook"}


def test_calls_over_http_reach_partners_and_metrics_add_up(server: tuple[str, Path]) -> None:
    """Under gunicorn with 2 workers, signed calls reach their partners and /metrics, summed over both workers,
    counts every one of them."""
    base, log = server
    targets = []
    for key in ["1", "2", "5", "6", "4", "1"]:
        result = StandIn(OverHttp(), TOKEN, base, keys=[key], caller=CALLER).call()
        targets.append(result.connected.target if result.connected else None)
    assert targets == ["queue general-tsunagari", "queue under18-kodomo", "queue women-sakura", "phone +15005550006",
                       "queue gender-niji", "queue general-tsunagari"]
    placed = 6
    while len(workers_seen(log)) < 2 and placed < 40:  # until both workers have answered some webhook
        StandIn(OverHttp(), TOKEN, base, keys=["1"], caller=CALLER).call()
        placed += 1
    assert len(workers_seen(log)) == 2
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    assert f'ivr_calls_total{{entry="0120",window="open"}} {placed}.0' in text
    assert 'ivr_calls_total{entry="9999",window="open"} 0.0' in text
    assert f'ivr_menu_selections_total{{option="general"}} {placed - 4}.0' in text
    assert "ivr_clock_simulated 1.0" in text


def test_serve_without_token_refuses_to_start() -> None:
    """`ivr serve` with no TWILIO_AUTH_TOKEN exits at once with a one-line explanation."""
    env = {k: v for k, v in os.environ.items() if k != "TWILIO_AUTH_TOKEN"}
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "serve", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ivr serve: not starting: TWILIO_AUTH_TOKEN is not set: without it no Twilio request can be verified "
        "(set it to the account's auth token)"]


def test_serve_with_a_blank_worker_count_starts_with_the_default(tmp_path: Path) -> None:
    """WEB_CONCURRENCY set but blank (as a Procfile host may leave it) is unset: `ivr serve` starts and answers,
    rather than gunicorn stopping on a traceback while callers hear Twilio's error."""
    import signal
    import time

    port = free_port()
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "WEB_CONCURRENCY": "", "IVR_LOG_FORMAT": "json",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "IVR_RUNTIME_DIR": str(tmp_path / "runtime")}
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(300):
            if proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "server.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def test_ivr_call_cli_prints_what_the_caller_hears(tmp_path: Path) -> None:
    """`ivr call` (the README's demo) walks a call with no Twilio account and no Redis server."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TWILIO_AUTH_TOKEN")}
    env["IVR_STATE_DIR"] = str(tmp_path / "state")
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "call", "--at", "2025-05-03T03:00:00+09:00",
                           "--press", "3", "5"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Simulated call to +81120494949 at 2025-05-03 03:00:00 JST (in-process app, embedded store)"
    assert "  [say pt-BR] Vamos transferir você para um conselheiro. Por favor, aguarde na linha." in lines
    assert lines[-1] == "=> The caller reached a person: queue foreign-worldbridge (bridged)."


def test_ivr_call_refuses_an_instant_without_zone() -> None:
    """--at without a zone is refused: the server may run in UTC and the window is JST."""
    done = subprocess.run([sys.executable, "-m", "ivr.cli", "call", "--at", "2025-05-03T03:00", "--press", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "'2025-05-03T03:00' has no zone; write it with one, e.g. 2025-05-03T03:00:00+09:00 for JST" in done.stderr
