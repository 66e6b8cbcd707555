"""Shared test support: the test token and caller, a real redis-server process, and placing a call."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import structlog

from ivr import logs
from ivr.tools.standin import CallResult, InProcess, StandIn, Transport

TOKEN = "test-auth-token-0123456789abcdef"
SERVER_ADMIN = "test-admin-token-for-servers"  # running_server's IVR_ADMIN_TOKEN unless the test sets its own
BASE = "https://hotline.example.jp"
CALLER = "+819012345678"  # fictional; tests search every output for it


@contextlib.contextmanager
def logged_writes(fmt: str, tty: bool = False) -> Iterator[list[str]]:
    """The service's logging set up for `fmt` on a stand-in stderr (a terminal or not); yields every write to it,
    and puts structlog's configuration back after."""
    writes: list[str] = []

    class Stderr:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

        def isatty(self) -> bool:
            return tty

    saved, real = structlog.get_config(), sys.stderr
    sys.stderr = Stderr()  # type: ignore[assignment]
    try:
        logs.configure("info", fmt)
        yield writes
    finally:
        sys.stderr = real
        structlog.configure(**saved)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real redis-server on a free loopback port, with no persistence."""

    def __init__(self, workdir: Path):
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: `apt-get install -y redis-server` (make test does this)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        for _ in range(200):
            try:
                client.ping()
                return self
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self, at_once: bool = False) -> None:
        """Shut down (SIGTERM), or `at_once` die (SIGKILL) with its connections; `start()` brings it back, empty,
        on the same port."""
        if self.proc is not None:
            (self.proc.kill if at_once else self.proc.terminate)()
            self.proc.wait(timeout=10)
            self.proc = None

    def kill(self) -> None:
        self.stop(at_once=True)


AppFactory = Callable[..., object]


def signed(url: str, params: dict[str, str]) -> str:
    """X-Twilio-Signature for this URL and these POST parameters, as Twilio computes it with our token."""
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(TOKEN).compute_signature(url, params))


def post_signed(transport: Transport, url: str, params: dict[str, str]) -> tuple[int, str, bytes]:
    """One webhook request signed as Twilio signs it, in process or over HTTP: (status, content type, body)."""
    return transport.post(url, params, signed(url, params))


def rq_worker(redis_url: str, *options: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """The Procfile's `worker` process on this Redis (REDIS_URL in its environment, as ivr.worker reads it), with these
    options (`--burst`: until the queue is empty)."""
    import shlex
    import sys

    root = Path(__file__).parents[1]
    line = next(x for x in (root / "Procfile").read_text().splitlines() if x.startswith("worker:"))
    argv = [redis_url if a == "${REDIS_URL}" else a for a in shlex.split(line.removeprefix("worker:"))]
    argv[0] = str(Path(sys.executable).with_name(argv[0]))  # rq, from this environment
    with log.open("ab") if log is not None else open(os.devnull, "wb") as out:  # the child keeps its own copy
        return subprocess.Popen([*argv[:-1], *options, argv[-1]], stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                env={**os.environ, "REDIS_URL": redis_url})


def call(app: object, keys: list[str] | None = None, path: str = "/voice/incoming", **kwargs: object) -> CallResult:
    """Place one simulated call on the app, as Twilio would, with the keys pressed in order (from `path`: a call
    that Twilio's next request for it finds in another state)."""
    kwargs.setdefault("caller", CALLER)
    return StandIn(InProcess(app), TOKEN, BASE, keys=keys or [], **kwargs).call(path)  # type: ignore[arg-type]


@contextlib.contextmanager
def running_server(tmp_path: Path, env: dict[str, str], workers: int) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`ivr serve` on a free port with these settings, ready (GET /healthz); stopped, with its log in
    tmp_path/server.log, when the block ends."""
    import os
    import signal
    import sys
    import urllib.request

    port = free_port()
    full = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
            "IVR_RUNTIME_DIR": str(tmp_path / "runtime"), "IVR_LOG_FORMAT": "json", "IVR_ADMIN_TOKEN": SERVER_ADMIN,
            **env}
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "ivr.cli", "serve", "--port", str(port), "--workers",
                             str(workers)], env=full, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as resp:  # noqa: S310
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError((tmp_path / "server.log").read_text())
        yield proc, base
        every_worker_serving(proc, base, workers, full["IVR_ADMIN_TOKEN"])  # not after a failure: it may be what failed
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)  # gunicorn's graceful_timeout is 20 s
            except subprocess.TimeoutExpired:  # a worker that missed the SIGTERM: nothing left to prove here
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        finally:
            log.close()


def every_worker_serving(proc: subprocess.Popen[bytes], base: str, workers: int, admin: str) -> None:
    """Wait until the master runs `workers` workers and each has answered /readyz (which names its worker only to
    the admin token).

    A worker forked to replace one that a test killed may still be booting when the test ends. A SIGTERM that
    reaches it before it installs its own handlers can be lost (the forked child still runs the master's handler,
    which only queues the signal), and the master then waits out the whole graceful_timeout (20 s) before it
    SIGKILLs the worker; a SIGTERM that arrives later still waits for the app to load. A worker that has answered
    a request is past both."""
    import json
    import urllib.request

    answered: set[int] = set()

    def all_answered() -> bool:
        req = urllib.request.Request(f"{base}/readyz", headers={"Authorization": f"Bearer {admin}"})  # noqa: S310
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            answered.add(int(json.loads(resp.read())["details"]["worker"]))
        running = gunicorn_workers(proc.pid)
        return len(running) == workers and running <= answered

    wait_for(all_answered, f"each of the {workers} workers answering")


def gunicorn_workers(master: int) -> set[int]:
    """The worker processes of a gunicorn master, as they are now."""
    return {int(pid) for pid in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def worker_holding(conn: socket.socket, workers: set[int]) -> int | None:
    """Which of these processes has accepted this client connection; None while it waits in the listen queue."""
    client_port, server_port = conn.getsockname()[1], conn.getpeername()[1]
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()  # sl, local ip:port, remote ip:port (hex), ..., inode (10th)
        local, remote, inode = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[9]
        if (local, remote) != (server_port, client_port) or inode == "0":
            continue
        for pid in workers:
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) == f"socket:[{inode}]" for fd in Path(f"/proc/{pid}/fd").iterdir()):
                    return pid
    return None


def wait_for(condition: Callable[[], object], what: str, tries: int = 1500) -> None:
    """Poll until the condition holds (a process restarted, a worker took a connection); fail naming it if never."""
    for _ in range(tries):
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def next_step_problem(root: ET.Element, caller_gone: bool = False) -> str | None:
    """Why this TwiML would leave the caller with nothing to do next; None when it leaves them a next step.

    The verbs are played in order, as Twilio does. The caller has a next step at the first of:
    - a <Gather> with an action that is requested even when nothing is pressed (actionOnEmptyResult="true"); without
      it, silence falls through to the verbs after the Gather, which must then give the next step;
    - a <Redirect> to a URL, an <Enqueue> or <Dial> with an action (requested when the queue or the dial ends), or
      a <Leave> (in a wait document: the queue's action takes over);
    - a <Hangup>, or the end of the document, after something was said or played: the closed message, the lines open
      now, a goodbye, or one round of waiting (Twilio then requests the wait URL again).
    A <Hangup> (or an end) with nothing said strands the caller, unless the caller has already hung up.
    """
    said = False
    for verb in root:
        if verb.tag in ("Say", "Play"):
            said = True
        elif verb.tag == "Gather":
            said |= any(child.tag in ("Say", "Play") for child in verb)
            if verb.get("action") and verb.get("actionOnEmptyResult") == "true":
                return None
        elif verb.tag == "Redirect":
            if (verb.text or "").strip():
                return None
            return "a <Redirect> without a URL"
        elif verb.tag in ("Enqueue", "Dial"):
            if verb.get("action"):
                return None
        elif verb.tag == "Leave":
            return None
        elif verb.tag in ("Hangup", "Reject"):
            return None if said or caller_gone else "hangs up without a word"
        elif verb.tag != "Pause":
            return f"unknown verb <{verb.tag}>"
    return None if said or caller_gone else "ends without a word"
