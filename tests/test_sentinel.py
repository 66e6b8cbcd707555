"""Redis behind Sentinel (`REDIS_URL=redis+sentinel://...`): a real master, a replica and three sentinels; `ivr serve`
takes the URL, the master dies in the middle of a call, calls go on (degraded mode), /readyz recovers once a sentinel
has promoted the replica, and the next calls' records and jobs are on the new master, with no restart."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.connection import parse_url
from rq import Queue

from ivr.cli import main
from ivr.deployment import SENTINEL_FORM, sentinel_address
from ivr.settings import SettingsError, load_file_settings
from ivr.state.keys import key
from ivr.tools.standin import Event, OverHttp, StandIn
from tests.support import CALLER, TOKEN, free_port, rq_worker, running_server, wait_for

OPEN = "2025-05-03T03:00:00+09:00"
SERVICE = "hotline"


@dataclass
class Group:
    """A master, its replica and three sentinels watching them, each a redis-server on a loopback port."""

    master: int
    replica: int
    sentinels: list[int]
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis+sentinel://{','.join(f'127.0.0.1:{p}' for p in self.sentinels)}/{SERVICE}/0"

    def kill(self, port: int) -> None:
        self.procs[port].kill()
        self.procs[port].wait(timeout=10)

    def master_named(self) -> int:
        """The master's port as the first sentinel names it now."""
        _, port = redis.Redis(port=self.sentinels[0]).sentinel_get_master_addr_by_name(SERVICE)
        return int(port)


def server(binary: str, workdir: Path, *args: str) -> subprocess.Popen[bytes]:
    workdir.mkdir()
    return subprocess.Popen([binary, *args], cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `apt-get install -y redis-server` (make test does this)")
    g = Group(free_port(), free_port(), [free_port() for _ in range(3)])
    plain = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    try:
        g.procs[g.master] = server(binary, tmp_path / "master", "--port", str(g.master), *plain)
        g.procs[g.replica] = server(binary, tmp_path / "replica", "--port", str(g.replica), *plain,
                                    "--replicaof", "127.0.0.1", str(g.master))
        wait_for(lambda: answers(g.master) and answers(g.replica), "master and replica answering")
        wait_for(lambda: redis.Redis(port=g.replica).info("replication")["master_link_status"] == "up",
                 "the replica in sync")
        for n, port in enumerate(g.sentinels):
            conf = tmp_path / f"sentinel-{n}.conf"  # a sentinel rewrites its own file: one each, writable
            conf.write_text(f"port {port}\nbind 127.0.0.1\n"
                            f"sentinel monitor {SERVICE} 127.0.0.1 {g.master} 2\n"
                            f"sentinel down-after-milliseconds {SERVICE} 500\n"
                            f"sentinel failover-timeout {SERVICE} 2000\n")
            g.procs[port] = server(binary, tmp_path / f"sentinel-{n}", str(conf), "--sentinel")
        wait_for(lambda: all(answers(p) for p in g.sentinels), "the sentinels answering")
        wait_for(lambda: all(len(redis.Redis(port=p).sentinel_sentinels(SERVICE)) == 2 and
                             redis.Redis(port=p).sentinel_slaves(SERVICE) for p in g.sentinels),
                 "each sentinel knowing the other two and the replica", tries=3000)
        yield g
    finally:
        for proc in g.procs.values():
            proc.kill()
            proc.wait(timeout=10)


def readyz(base: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{base}/readyz", timeout=10) as resp:  # noqa: S310
        return dict(json.loads(resp.read()))


@pytest.mark.redis  # its own redis-servers, not the shared fixture's
def test_a_failover_strands_no_caller_and_writes_go_to_the_new_master(group: Group, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """The master dies while a caller is in the menu: that call and every call after it reach the general line's
    partner; /readyz says the store is back once the replica is promoted, and new calls are recorded there; the RQ
    worker and the CLI find the new master through the same URL."""
    env = {"REDIS_URL": group.url, "IVR_CLOCK": OPEN}
    with running_server(tmp_path, env, workers=1) as (_, base):
        def one_call(printer: object = None) -> str:
            result = StandIn(OverHttp(), TOKEN, base, keys=["1"], caller=CALLER, printer=printer).call()  # type: ignore[arg-type]
            assert result.connected is not None and result.connected.target == "queue general-tsunagari"
            assert not result.fallback_used and not result.stranded
            return result.call_sid

        before = one_call()
        assert redis.Redis(port=group.master).exists(key("call", before)) == 1
        assert readyz(base)["store"] is True

        def kill_at_the_menu(event: Event) -> None:
            if event.kind == "key" and group.procs[group.master].poll() is None:
                group.kill(group.master)

        one_call(kill_at_the_menu)  # the master dies between the menu and the partner
        assert group.procs[group.master].poll() is not None
        placed = 0
        while not (readyz(base)["store"] is True and group.master_named() == group.replica):
            one_call()  # every call during the failover still reaches a person
            placed += 1
            assert placed < 300, "the replica was never promoted"
        after = [one_call() for _ in range(3)]
        new_master = redis.Redis(port=group.replica)
        assert new_master.info("replication")["role"] == "master"
        assert [new_master.exists(key("call", sid)) for sid in after] == [1, 1, 1]
        assert readyz(base)["reason"] == "clock_simulated"  # the store is ok; only the rehearsal clock is noted
    queued = Queue("ivr", connection=new_master).count
    assert queued > 0  # the finished calls' jobs, written to the new master
    assert rq_worker(group.url, "--burst", log=tmp_path / "rq.log").wait(timeout=60) == 0
    assert Queue("ivr", connection=new_master).count == 0, (tmp_path / "rq.log").read_text()
    records = len(new_master.keys("ivr:call:*"))
    monkeypatch.setenv("REDIS_URL", group.url)
    assert main(["call", "--at", OPEN, "--press", "1"]) == 0  # the CLI, in-process, on the same store
    assert "(in-process app, redis store)" in capsys.readouterr().out
    assert len(new_master.keys("ivr:call:*")) == records + 1
    assert main(["emergency", "list"]) == 0  # the supervisors' command reaches the new master the same way
    assert "no open emergency flags" in capsys.readouterr().out


def test_a_sentinel_url_is_read_in_one_place_and_a_wrong_one_stops_the_command() -> None:
    """An operator who writes the Sentinel URL wrong is told its form at once, with the password masked."""
    assert load_file_settings({"REDIS_URL": "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2/hotline/2"}).redis_url
    with pytest.raises(SettingsError) as e:
        load_file_settings({"REDIS_URL": "redis+sentinel://:secret-password@10.0.0.1:26379"})
    assert str(e.value) == ("REDIS_URL: 'redis+sentinel://***@10.0.0.1:26379': the service name (and a database "
                            "number) must follow the sentinels; write "
                            "redis+sentinel://[:password@]host:port[,host:port...]/SERVICE[/db]")


@pytest.mark.redis  # its own redis-servers, not the shared fixture's
def test_the_ops_example_is_a_sentinel_config_redis_accepts(tmp_path: Path) -> None:
    """An operator copying ops/sentinel.example.conf gets a sentinel that starts and watches the `hotline` master."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `apt-get install -y redis-server` (make test does this)")
    example = (Path(__file__).parents[1] / "ops" / "sentinel.example.conf").read_text(encoding="utf-8")
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(example.replace("10.0.0.11", "127.0.0.1").replace("bind 127.0.0.1 127.0.0.1", "bind 127.0.0.1")
                    .replace("port 26379", f"port {port}").replace("/var/lib/redis-sentinel", str(tmp_path)),
                    encoding="utf-8")
    proc = server(binary, tmp_path / "run", str(conf), "--sentinel")
    try:
        wait_for(lambda: answers(port), "the example sentinel answering")
        watched = redis.Redis(port=port).sentinel_masters()
        assert list(watched) == [SERVICE]
        assert (watched[SERVICE]["quorum"], watched[SERVICE]["down-after-milliseconds"]) == (2, 5000)
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.mark.parametrize(("url", "password"), [
    ("redis+sentinel://:Qz7/Wx4@h1:26379/mymaster", "Qz7/Wx4"),  # a / not percent-encoded
    ("redis+sentinel://:s3cr@t9@h1:26379", "s3cr@t9"),  # an @ not percent-encoded, no service
    ("redis+sentinel://:Qz7?Wx4@h1:26379/mymaster", "Qz7?Wx4"),
    ("redis+sentinel://:Qz7#Wx4@h1:26379/mymaster", "Qz7#Wx4"),
    ("redis+sentinel://h1:26379/mymaster?password=Qz7@Wx4", "Qz7@Wx4"),  # redis-py reads a password from the query
    ("redis+sentinel://:Qz7@Wx4@h1:x/mymaster", "Qz7@Wx4"),
    ("http://:Qz7/Wx4@cache:6379/0", "Qz7/Wx4"),  # plain Redis, a wrong scheme
    ("redis:/:hunter2@cache:6379/0", "hunter2"),  # a slash short
])
def test_no_part_of_a_password_is_in_the_error(url: str, password: str) -> None:
    """A wrong REDIS_URL stops the command with the URL in the error, which goes to the terminal and the boot log:
    none of the password may be in it, even where an unencoded / ? # or @ makes the URL ambiguous."""
    with pytest.raises(SettingsError) as e:
        load_file_settings({"REDIS_URL": url})
    pieces = [piece for piece in re.split(r"[/?#@]", password) if len(piece) > 1]
    assert (e.value.variable, [piece for piece in pieces if piece in str(e.value)]) == ("REDIS_URL", [])


def test_the_masked_url_keeps_what_helps_find_the_mistake() -> None:
    """The operator still sees the hosts and the service, and is told to percent-encode the password."""
    with pytest.raises(SettingsError) as e:
        load_file_settings({"REDIS_URL": "redis+sentinel://:pa/ss@h1:26379/mymaster"})
    assert str(e.value) == ("REDIS_URL: 'redis+sentinel://***@h1:26379/mymaster': a password's / ? # and @ must be "
                            f"percent-encoded (%2F %3F %23 %40); write {SENTINEL_FORM}")


@pytest.mark.parametrize("url", ["redis+sentinel://h1:26379/mymaster?x=1", "redis+sentinel://h1:26379/mymaster/0?",
                                 "redis+sentinel://h1:26379/mymaster#x"])
def test_a_query_or_fragment_is_refused_not_read_into_the_service_name(url: str) -> None:
    """`mymaster?x=1` taken as the service name would make every connection fail (no master of that name)."""
    with pytest.raises(SettingsError) as e:
        load_file_settings({"REDIS_URL": url})
    assert str(e.value).endswith(f": options after ? or # are not read here; write {SENTINEL_FORM}")


@pytest.mark.parametrize(("url", "service", "db"), [("redis+sentinel://h1/mymaster/", "mymaster", 0),
                                                    ("redis+sentinel://h1/mymaster/3/", "mymaster", 3),
                                                    ("redis+sentinel://h1/my%2Fmaster", "my/master", 0)])
def test_one_trailing_slash_is_allowed(url: str, service: str, db: int) -> None:
    """An operator who ends the URL with a slash means the same master."""
    address = sentinel_address(load_file_settings({"REDIS_URL": url}).redis_url or "")
    assert address is not None and (address.sentinels, address.service, address.db) == ((("h1", 26379),), service, db)


@pytest.mark.parametrize("credentials", ["user@", "user:pw@", ":pw@", ":p%2Fw%40@", "u%40x:@", ""])
def test_credentials_are_read_as_redis_py_reads_them(credentials: str) -> None:
    """`user@` is a user name, as in any redis:// URL redis-py opens; `:password@` a password alone."""
    address = sentinel_address(f"redis+sentinel://{credentials}h1:26379,[::1]:26380/hotline/1")
    plain = parse_url(f"redis://{credentials}h1:26379/1")
    assert address is not None
    assert (address.username, address.password) == (plain.get("username"), plain.get("password"))
    assert address.sentinels == (("h1", 26379), ("::1", 26380))


@pytest.mark.parametrize("url", ["redis+sentinel://h1:0/hotline", "redis+sentinel://h1:65536/hotline",
                                 "redis+sentinel://h1,,h2/hotline", "redis+sentinel://[::1/hotline",
                                 "redis+sentinel://h1/hotline//", "redis+sentinel://h1/hotline/x",
                                 "redis+sentinel://h1/hotline/²"])
def test_a_wrong_sentinel_url_stops_the_command(url: str) -> None:
    """Each is refused at boot with the form to write, rather than failing at the first call."""
    with pytest.raises(SettingsError) as e:
        load_file_settings({"REDIS_URL": url})
    assert str(e.value).endswith(f"write {SENTINEL_FORM}")
