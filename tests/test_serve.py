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


def test_serve_without_redis_runs_one_worker_and_every_concurrent_caller_gets_the_menu(tmp_path: Path) -> None:
    """Without REDIS_URL, `ivr serve` says it runs one worker (WEB_CONCURRENCY=4 notwithstanding); 120 callers at
    once all hear the menu and reach a partner (none gets the fallback route), and the state file keeps every one
    of them: 120 calls, 120 unique callers."""
    import signal
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from tests.support import gunicorn_workers

    port, state = free_port(), tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update({"TWILIO_AUTH_TOKEN": TOKEN, "WEB_CONCURRENCY": "4", "IVR_LOG_FORMAT": "json",
                "IVR_CLOCK": "2025-05-03T03:00:00+09:00", "IVR_STATE_DIR": str(state),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "IVR_RUNTIME_DIR": str(tmp_path / "runtime")})
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    callers = [f"+8190{n:08d}" for n in range(120)]
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                time.sleep(0.05)
        assert len(gunicorn_workers(proc.pid)) == 1
        together = threading.Barrier(len(callers), timeout=60)

        def one(caller: str) -> tuple[list[tuple[str, int]], str | None, bool]:
            together.wait()
            result = StandIn(OverHttp(), TOKEN, base, keys=["1"], caller=caller).call()
            return result.requests[:2], result.connected.target if result.connected else None, result.fallback_used

        with ThreadPoolExecutor(max_workers=len(callers)) as pool:
            results = list(pool.map(one, callers))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    menu = [("/voice/incoming", 200), ("/voice/menu", 200)]  # the menu's Gather answered with the key pressed
    assert results == [(menu, "queue general-tsunagari", False)] * len(callers)
    lines = (tmp_path / "server.log").read_text().splitlines()
    assert lines[0] == ("ivr serve: REDIS_URL is not set: one worker (not the 4 asked for), with the embedded store "
                        f"keeping its counts in {state / 'embedded-state.json'}")
    saved = {e["key"]: e["value"] for e in json.loads((state / "embedded-state.json").read_text())}
    assert (saved["ivr:agg:gw-2025:2025-05-03"]["calls"], saved["ivr:callers-count:2025-05-03"]) == ("120", "120")


def gunicorn_conf_workers(**env: str) -> tuple[int, list[str]]:
    """`workers` as ivr/gunicorn_conf.py sets it under this environment (no REDIS_URL unless given), and what it
    printed, in a process of its own."""
    full = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "WEB_CONCURRENCY")}
    done = subprocess.run([sys.executable, "-c", "import runpy; print(runpy.run_path('ivr/gunicorn_conf.py')"
                           "['workers'])"], env={**full, **env}, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).parents[1], check=True)
    return int(done.stdout), done.stderr.splitlines()


def test_gunicorn_run_with_the_config_directly_keeps_one_worker_without_redis() -> None:
    """gunicorn started with the service's config file (not through `ivr serve`) and no REDIS_URL runs one worker
    and says so, whatever WEB_CONCURRENCY asks; with REDIS_URL it runs what was asked."""
    assert gunicorn_conf_workers(WEB_CONCURRENCY="4") == (1, [
        "ivr serve: REDIS_URL is not set: one worker (not the 4 asked for), with the embedded store"])
    assert gunicorn_conf_workers(WEB_CONCURRENCY="1") == (1, [])
    assert gunicorn_conf_workers(WEB_CONCURRENCY="4", REDIS_URL="redis://127.0.0.1:1") == (4, [])


def test_gunicorn_with_w_3_on_its_command_line_still_runs_one_worker_without_redis(tmp_path: Path) -> None:
    """`gunicorn -c ivr/gunicorn_conf.py -w 3` without REDIS_URL: the master keeps one worker (the embedded store is
    one process's own) and says why, for WEB_CONCURRENCY and for -w."""
    import signal
    import time

    from tests.support import gunicorn_workers

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "WEB_CONCURRENCY")}
    env.update({"TWILIO_AUTH_TOKEN": TOKEN, "IVR_STATE_DIR": str(tmp_path / "state"),
                "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "IVR_RUNTIME_DIR": str(tmp_path / "runtime"),
                "IVR_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"})
    conf = Path(__file__).parents[1] / "ivr" / "gunicorn_conf.py"
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(conf), "-w", "3", "ivr.app:create_app()"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        time.sleep(1.5)  # time enough for the master to start any further worker
        workers = gunicorn_workers(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    said = [x for x in (tmp_path / "server.log").read_text().splitlines() if "REDIS_URL is not set" in x]
    assert (len(workers), [x.rpartition("] ")[2] for x in said]) == (1, [
        "ivr serve: REDIS_URL is not set: one worker (not the 2 asked for), with the embedded store",
        "REDIS_URL is not set: one worker (not the 3 asked for), with the embedded store"])


def test_idle_and_trickling_connections_hold_no_worker_and_big_bodies_get_413(redis_url: str, tmp_path: Path) -> None:
    """Two gevent workers, with 200 connections open and silent and 20 more sending their request line a byte every
    0.5 s: signed /voice/incoming calls, /voice/fallback and /healthz are all answered, each within 1 s, and a body
    declared at 4 MB with a junk signature is refused (413) within 0.5 s, before any of it is sent."""
    import socket
    import threading
    import time

    from tests.support import gunicorn_workers, post_signed, wait_for

    env = {"REDIS_URL": redis_url, "IVR_CLOCK": "2025-05-03T03:00:00+09:00"}
    held: list[socket.socket] = []
    stop = threading.Event()
    with running_server(tmp_path, env, workers=2) as (proc, base):
        port = int(base.rpartition(":")[2])

        def fds() -> int:
            return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in gunicorn_workers(proc.pid))

        def trickle(conns: list[socket.socket]) -> None:
            line = b"POST /voice/incoming HTTP/1.1\r\nHost: x\r\n"
            for n in range(len(line)):
                if stop.wait(0.5):
                    return
                for c in conns:
                    try:
                        c.send(line[n:n + 1])
                    except OSError:  # the worker closed it (keepalive: 5 s for the request's headers)
                        pass

        try:
            before = fds()
            held += [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(200)]
            def closed_by_server(c: socket.socket) -> bool:  # accepted, then closed at the 5 s keepalive
                try:
                    return c.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    return False
                except OSError:
                    return True

            # Every connection accepted: held by a worker now, or already closed by it for sending nothing (on a
            # loaded machine the first ones can reach the keepalive before the last is accepted). A few descriptors
            # of the workers' own may close meanwhile (a probe's connection, a pooled Redis one): 5 of slack.
            wait_for(lambda: fds() >= before + 195 or fds() >= before + 195 - sum(map(closed_by_server, held)),
                     "the workers holding the 200 idle connections")
            slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(20)]
            held += slow
            trickler = threading.Thread(target=trickle, args=(slow,))
            trickler.start()
            http, slowest, answered = OverHttp(), 0.0, []
            deadline = time.monotonic() + 4
            n = 0
            while time.monotonic() < deadline:
                n += 1
                params = {"CallSid": f"CA{n:032x}", "AccountSid": "AC" + "0" * 32, "From": CALLER,
                          "To": "+81120494949", "CallStatus": "ringing"}
                for path in ("/voice/incoming", "/voice/fallback"):
                    t0 = time.monotonic()
                    status = post_signed(http, base + path, params)[0]
                    slowest = max(slowest, time.monotonic() - t0)
                    answered.append((path, status))
                t0 = time.monotonic()
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as resp:  # noqa: S310
                    answered.append(("/healthz", resp.status))
                slowest = max(slowest, time.monotonic() - t0)
            with socket.create_connection(("127.0.0.1", port), timeout=5) as big:
                t0 = time.monotonic()
                big.sendall(b"POST /voice/incoming HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: junk\r\n"
                            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 4194304\r\n\r\n")
                head = big.recv(4096)
                refused_in = time.monotonic() - t0
            assert head.startswith(b"HTTP/1.1 413 "), head[:100]
            assert refused_in < 0.5
            stop.set()
            trickler.join(timeout=10)
        finally:
            stop.set()
            for c in held:
                c.close()
    assert n >= 5 and answered == [("/voice/incoming", 200), ("/voice/fallback", 200), ("/healthz", 200)] * n
    assert slowest < 1.0, slowest
