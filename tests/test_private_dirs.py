"""Private runtime files: the runtime, metrics and state directories are this user's own (0700); one planted by
another user is refused with one clear line, never emptied, never served. The state file is written whole, 0600,
and a write that fails never changes what a caller hears."""

from __future__ import annotations

import json
import os
import runpy
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from common.facts import parse_instant
from ivr.app import create_app
from ivr.cli import main
from ivr.clock import Clock
from ivr.state import embedded, private
from ivr.state.private import UnsafeDirectory, ancestor_problem, emptied, private_dir, problem
from tests.support import TOKEN, call, free_port

OPEN = "2025-05-03T03:00:00+09:00"
ADVICE = "remove it, or set {v} to a directory that only this user can write"


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`ivr serve` with the test token and these settings, run until it exits (it should refuse at once)."""
    full = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    full.update({"TWILIO_AUTH_TOKEN": TOKEN, **env})
    return subprocess.run([sys.executable, "-m", "ivr.cli", "serve", "--port", str(free_port())], env=full,
                          capture_output=True, text=True, timeout=60)


def planted(path: Path) -> Path:
    """A runtime directory as another local user would plant it: open to all, with a last good config inside."""
    (path / "good-planted").mkdir(parents=True)
    (path / "good-planted" / "routing.yaml").write_text("partners: [{id: x, number: '+15005550000'}]\n")
    (path / "last-good").symlink_to("good-planted")
    path.chmod(0o777)
    return path


def test_serve_refuses_a_runtime_dir_open_to_everyone(tmp_path: Path) -> None:
    """A runtime directory another user could write (mode 0777, a planted last good config inside) stops `ivr
    serve` with one line naming it; its config is neither served nor removed."""
    runtime = planted(tmp_path / "runtime")
    done = serve({"IVR_RUNTIME_DIR": str(runtime), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
                  "IVR_STATE_DIR": str(tmp_path / "state")})
    assert (done.returncode, done.stderr.splitlines()) == (2, [
        f"ivr serve: not starting: IVR_RUNTIME_DIR {runtime} is writable by group or others (mode 0777): "
        + ADVICE.format(v="IVR_RUNTIME_DIR")])
    assert sorted(p.name for p in runtime.iterdir()) == ["good-planted", "last-good"]


@pytest.mark.parametrize(("variable", "name"), [("PROMETHEUS_MULTIPROC_DIR", "metrics"), ("IVR_STATE_DIR", "state")])
def test_serve_refuses_a_metrics_or_state_dir_that_is_a_symlink(tmp_path: Path, variable: str, name: str) -> None:
    """A metrics or (without Redis) state directory pointing through a symbolic link, to a directory someone else
    chose, stops `ivr serve` with one line naming it, before anything is written there."""
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / name).symlink_to(tmp_path / "elsewhere")
    done = serve({"IVR_RUNTIME_DIR": str(tmp_path / "runtime"), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
                  "IVR_STATE_DIR": str(tmp_path / "state")})
    assert (done.returncode, done.stderr.splitlines()) == (2, [
        f"ivr serve: not starting: {variable} {tmp_path / name} is a symbolic link: " + ADVICE.format(v=variable)])


def test_serve_refuses_a_runtime_dir_of_another_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A runtime directory that belongs to another user (seen as such by running as another uid) stops `ivr serve`
    before gunicorn starts, with one line naming it and both users."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    owner = os.lstat(runtime).st_uid
    monkeypatch.delenv("REDIS_URL", raising=False)
    for name, value in {"TWILIO_AUTH_TOKEN": TOKEN, "IVR_RUNTIME_DIR": str(runtime),
                        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
                        "IVR_STATE_DIR": str(tmp_path / "state")}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)
    assert main(["serve", "--port", str(free_port())]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"ivr serve: not starting: IVR_RUNTIME_DIR {runtime} belongs to another user (uid {owner}; this service "
        f"runs as uid {owner + 1}): " + ADVICE.format(v="IVR_RUNTIME_DIR")]


def test_what_makes_a_directory_unsafe(tmp_path: Path) -> None:
    """Each planted shape is named for what it is: another owner, open to writers, a link, not a directory; a
    private directory of our own passes."""
    d, f, link = tmp_path / "d", tmp_path / "f", tmp_path / "link"
    d.mkdir(mode=0o700)
    f.write_text("")
    link.symlink_to(d)
    me = os.getuid()
    assert problem(os.lstat(d), me) is None
    assert problem(os.lstat(d), me + 1) == f"belongs to another user (uid {me}; this service runs as uid {me + 1})"
    assert (problem(os.lstat(link), me), problem(os.lstat(f), me)) == ("is a symbolic link", "is not a directory")
    d.chmod(0o775)
    assert problem(os.lstat(d), me) == "is writable by group or others (mode 0775)"


def test_private_dirs_are_made_0700_and_ours_are_narrowed(tmp_path: Path) -> None:
    """A missing directory is made 0700 (parents too); an existing one of ours that others could read is narrowed
    to 0700; a fresh start empties one of ours and nothing else."""
    made = private_dir(tmp_path / "a" / "b", "IVR_RUNTIME_DIR")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    (old / "sub").mkdir()
    (old / "sub" / "x").write_text("stale")
    (old / "file").write_text("stale")
    (old / "link").symlink_to(tmp_path / "a")
    assert (emptied(old, "IVR_RUNTIME_DIR"), stat.S_IMODE(old.stat().st_mode), list(old.iterdir())) == (old, 0o700, [])
    assert (tmp_path / "a" / "b").is_dir()  # a link inside is removed, never followed


def test_a_worker_never_boots_on_a_planted_runtime_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker started on a runtime directory open to everyone refuses to boot rather than serve its config."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    runtime = planted(tmp_path / "runtime")
    with pytest.raises(UnsafeDirectory) as refused:
        create_app({"TWILIO_AUTH_TOKEN": TOKEN, "IVR_RUNTIME_DIR": str(runtime), "IVR_STATE_DIR": str(tmp_path)})
    assert str(refused.value) == (f"IVR_RUNTIME_DIR {runtime} is writable by group or others (mode 0777): "
                                  + ADVICE.format(v="IVR_RUNTIME_DIR"))


def test_gunicorn_config_refuses_a_planted_dir_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """gunicorn run with the service's config file directly (not through `ivr serve`) stops at start on a planted
    runtime directory, naming it, and leaves it as it was."""
    runtime = planted(tmp_path / "runtime")
    monkeypatch.setenv("IVR_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("WEB_CONCURRENCY", "1")  # without REDIS_URL more would be one, with a line of its own
    conf = runpy.run_path(str(Path(__file__).parents[1] / "ivr" / "gunicorn_conf.py"))
    with pytest.raises(SystemExit) as stopped:
        conf["on_starting"](None)
    assert (stopped.value.code, capsys.readouterr().err.splitlines()) == (2, [
        f"ivr serve: not starting: IVR_RUNTIME_DIR {runtime} is writable by group or others (mode 0777): "
        + ADVICE.format(v="IVR_RUNTIME_DIR")])
    assert sorted(p.name for p in runtime.iterdir()) == ["good-planted", "last-good"]


def embedded_app(state: Path) -> object:
    """An in-process app on the embedded store kept in `state`, at a time the line is open."""
    return create_app({"TWILIO_AUTH_TOKEN": TOKEN, "IVR_STATE_DIR": str(state), "IVR_LOG_FORMAT": "json",
                       "CLOCK": Clock(parse_instant(OPEN), frozen=True)})


def test_a_state_file_that_cannot_be_written_changes_nothing_for_the_caller(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the disk full, a caller hears and reaches exactly what they would otherwise; the failure is logged."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    good = call(embedded_app(tmp_path / "good"), ["5"])
    app = embedded_app(tmp_path / "full")

    def full(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(embedded, "_replace", full)
    with capture_logs() as logs:
        failing = call(app, ["5"])
    assert (failing.requests, failing.text, failing.connected) == (good.requests, good.text, good.connected)
    assert not failing.fallback_used
    assert {(e["event"], e["error"]) for e in logs if e["event"] == "embedded_state_not_saved"} == {
        ("embedded_state_not_saved", "OSError")}
    assert [p.name for p in (tmp_path / "full").iterdir()] == []  # nothing half-written left behind


def test_the_state_file_is_owner_only_and_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded store's file is 0600 from its first byte, in a 0700 directory, with no temporary file left."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    previous = os.umask(0o000)  # the most permissive umask still yields 0600
    try:
        call(embedded_app(tmp_path / "state"), ["1"])
    finally:
        os.umask(previous)
    state = tmp_path / "state"
    assert (stat.S_IMODE((state / "embedded-state.json").stat().st_mode), stat.S_IMODE(state.stat().st_mode),
            [p.name for p in state.iterdir()]) == (0o600, 0o700, ["embedded-state.json"])


GOOD = {"key": "ivr:withheld:2025-05-03", "type": "string", "expires": 0, "value": "4"}


@pytest.mark.parametrize(("saved", "logged", "withheld"), [
    ([1, GOOD], ("embedded_state_entries_skipped", {"TypeError": 1}), "4"),
    ([{"key": "x"}, GOOD], ("embedded_state_entries_skipped", {"KeyError": 1}), "4"),
    ([{"key": "ivr:callers-count:2025-05-03", "type": "string", "expires": 0, "value": "1.5"}, GOOD],
     ("embedded_state_entries_skipped", {"ValueError": 1}), "4"),
    ([{"key": "ivr:agg:gw-2025:2025-05-03", "type": "hash", "expires": "soon", "value": {}}, GOOD],
     ("embedded_state_entries_skipped", {"ValueError": 1}), "4"),
    ({"not": "a list"}, ("embedded_state_unreadable", "TypeError"), None),
], ids=["not-an-entry", "no-type", "count-1.5", "bad-expiry", "not-a-list"])
def test_a_state_file_with_bad_entries_neither_stops_the_worker_nor_fails_a_caller(
        saved: object, logged: tuple[str, object], withheld: str | None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker boots on a state file with entries it cannot use, keeps the good ones, and its callers hear the menu
    and reach a partner as usual; the log names the kind of error only."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "embedded-state.json").write_text(json.dumps(saved))
    with capture_logs() as logs:
        app = embedded_app(state)
        result = call(app, ["1"])
    assert (result.connected.target if result.connected else None, result.fallback_used) == (
        "queue general-tsunagari", False)
    kept = {e["key"]: e["value"] for e in json.loads((state / "embedded-state.json").read_text())}
    assert (kept.get("ivr:withheld:2025-05-03"), kept["ivr:callers-count:2025-05-03"]) == (withheld, "1")
    event, errors = logged
    assert [(e["event"], e.get("errors", e.get("error"))) for e in logs if e["log_level"] == "warning"] == [
        (event, errors)]


def test_a_state_write_that_fails_in_any_way_changes_nothing_for_the_caller(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever goes wrong while the counts are written (here a ValueError), the caller reaches their partner and the
    log names the error's type, nothing of its text."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    app = embedded_app(tmp_path / "state")

    def odd(client: object) -> list[object]:
        raise ValueError("invalid literal for int() with base 10: '+819071829364'")

    monkeypatch.setattr(embedded, "entries", odd)
    with capture_logs() as logs:
        result = call(app, ["1"])
    assert (result.connected.target if result.connected else None, result.fallback_used) == (
        "queue general-tsunagari", False)
    assert {(e["event"], e["error"], "detail" in e) for e in logs if e["log_level"] == "warning"} == {
        ("embedded_state_not_saved", "ValueError", False)}  # once for each save of the call


# -- the way to a private directory: no parent another user can change ----------------------------------------------
WAY = "set {v} to a directory whose parents only this user or root can write"


@pytest.mark.parametrize("existing", [False, True], ids=["missing", "ours-already"])
def test_a_dir_reached_through_a_link_to_a_directory_open_to_all_is_refused(existing: bool, tmp_path: Path) -> None:
    """PROMETHEUS_MULTIPROC_DIR under a link to a directory everyone may write (so anyone could swap the metrics
    directory after the check) is refused in one line naming that directory; nothing is made there."""
    shared = tmp_path / "open"
    shared.mkdir()
    shared.chmod(0o777)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "link").symlink_to(shared)
    if existing:
        (shared / "metrics").mkdir(mode=0o700)
    target = tmp_path / "x" / "link" / "metrics"
    with pytest.raises(UnsafeDirectory) as refused:
        private_dir(target, "PROMETHEUS_MULTIPROC_DIR")
    assert (str(refused.value), sorted(p.name for p in shared.iterdir())) == (
        f"PROMETHEUS_MULTIPROC_DIR {target} is under {shared}, which is writable by group or others without the "
        "sticky bit (mode 0777): " + WAY.format(v="PROMETHEUS_MULTIPROC_DIR"), ["metrics"] if existing else [])


def test_a_dir_under_a_sticky_shared_directory_like_tmp_is_accepted(tmp_path: Path) -> None:
    """The defaults under /tmp keep working: a directory in a sticky, world-writable parent (as /tmp is) is made
    0700 and used, and so is one in the system's own temporary directory."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    mine = Path(tempfile.gettempdir()) / f"ivr-test-{os.getpid()}-{tmp_path.name}"
    try:
        made = [private_dir(shared / "runtime", "IVR_RUNTIME_DIR"), private_dir(mine, "IVR_RUNTIME_DIR")]
        assert [stat.S_IMODE(p.stat().st_mode) for p in made] == [0o700, 0o700]
    finally:
        if mine.is_dir():
            mine.rmdir()


def stat_of(mode: int, uid: int) -> os.stat_result:
    """An lstat result with this type and mode, owned by `uid`."""
    return os.stat_result((mode, 1, 1, 1, uid, 0, 0, 0, 0, 0))


def test_what_makes_a_directory_on_the_way_unsafe() -> None:
    """On the way to a private directory, another (non-root) user's directory or link, or a directory others may
    write without the sticky bit, is named for what it is; root's sticky /tmp, root's links and our own are fine."""
    me, other = 1000, 1001
    assert [ancestor_problem(stat_of(m, uid), me) for m, uid in [
        (stat.S_IFDIR | 0o1777, 0), (stat.S_IFLNK | 0o777, 0), (stat.S_IFDIR | 0o755, me), (stat.S_IFLNK | 0o777, me),
        (stat.S_IFDIR | 0o1777, me), (stat.S_IFDIR | 0o755, 0)]] == [None] * 6
    assert [ancestor_problem(stat_of(m, uid), me) for m, uid in [
        (stat.S_IFDIR | 0o755, other), (stat.S_IFLNK | 0o777, other), (stat.S_IFDIR | 0o1777, other),
        (stat.S_IFDIR | 0o775, me), (stat.S_IFDIR | 0o777, 0), (stat.S_IFREG | 0o644, me)]] == [
        f"belongs to another user (uid {other}; this service runs as uid {me})",
        f"is a symbolic link of another user (uid {other}; this service runs as uid {me})",
        f"belongs to another user (uid {other}; this service runs as uid {me})",
        "is writable by group or others without the sticky bit (mode 0775)",
        "is writable by group or others without the sticky bit (mode 0777)",
        "is not a directory"]


def test_a_directory_swapped_for_a_link_after_the_check_is_not_emptied(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """If the metrics directory is replaced by a link to another directory between the check and the emptying, the
    start is refused in one line and the other directory keeps every file."""
    metrics, victim = tmp_path / "metrics", tmp_path / "victim"
    metrics.mkdir(mode=0o700)
    victim.mkdir()
    (victim / "keep.txt").write_text("not ours to delete")
    (victim / "sub").mkdir()
    checked = private.problem

    def swapped_after_check(st: os.stat_result, uid: int) -> str | None:
        reason = checked(st, uid)
        if not metrics.is_symlink():
            metrics.rename(tmp_path / "aside")
            metrics.symlink_to(victim)
        return reason

    monkeypatch.setattr(private, "problem", swapped_after_check)
    with pytest.raises(UnsafeDirectory) as refused:
        emptied(metrics, "PROMETHEUS_MULTIPROC_DIR")
    assert (str(refused.value), sorted(p.name for p in victim.iterdir())) == (
        f"PROMETHEUS_MULTIPROC_DIR {metrics} was replaced while it was being checked", ["keep.txt", "sub"])
