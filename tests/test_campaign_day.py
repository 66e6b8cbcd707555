"""A simulated campaign day: no caller's number anywhere afterwards, and the report adds up to the calls made."""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import re
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry, StartedJobRegistry
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from ivr.cli import main
from ivr.state import jobs
from ivr.tools.standin import CallResult, InProcess, OverHttp, StandIn
from tests.support import BASE, TOKEN, AppFactory, RedisServer, call, rq_worker, running_server, wait_for
from tests.test_queue import capped_routing
from tests.test_referrals import RecordingTwilio

CALLERS = [f"+8190{n:08d}" for n in (12340001, 23450002, 34560003, 45670004, 56780005)]
SCRIPT = [(["1"], {}), (["2"], {}), (["5"], {"queue_result": "queue-full"}), (["3", "4"], {}),
          (["6"], {"dial_status": "no-answer"}), (["7", "8", "9", "4"], {}), (["5", "2"], {"queue_result": "queue-full"})]


def forms(number: str) -> list[str]:
    """Every way a number could leak: E.164, without +, national, national with dashes, the last 8 digits."""
    national = "0" + number[3:]
    return [number, number[1:], national, f"{national[:3]}-{national[3:7]}-{national[7:]}", number[-8:]]


def stored_and_reported(redis_url: str, report: Path) -> dict[str, str]:
    """Everything Redis holds (keys and values, ours and RQ's) and every file of the report, as text."""
    client = redis.Redis.from_url(redis_url)
    places = {"redis": "".join(repr(k) + repr(client.dump(k)) for k in client.scan_iter())}
    for f in report.iterdir():
        places[f.name] = f.read_bytes().decode("latin-1")
    return places


def assert_no_number(places: dict[str, str]) -> None:
    for where, text in places.items():
        for number in CALLERS:
            for form in forms(number):
                assert form not in text, f"{form} found in {where}"


def report_day(report: Path, date: str = "2025-05-03") -> dict[str, dict[str, str]]:
    """The report's rows for one day, by option ('all' for the day's totals)."""
    with (report / "report-gw-2025.csv").open(encoding="utf-8") as f:
        return {r["option"]: r for r in csv.DictReader(f) if r["date"] == date}


def test_a_campaign_day_leaves_no_number_and_adds_up(make_app: AppFactory, redis_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls through the day (SMS, overflow, counsellors, a withheld caller): no number in logs, metrics, Redis or
    report, and the report's total is the number of calls."""
    sms = {"TWILIO_ACCOUNT_SID": "AC" + "f" * 32, "IVR_SMS_FROM": "+15005550006"}
    for k, v in {**sms, "TWILIO_AUTH_TOKEN": TOKEN}.items():
        monkeypatch.setenv(k, v)
    partners = tmp_path / "partners.yaml"
    partners.write_text(COUNSELLORS, encoding="utf-8")
    placed = 0
    metrics_text = ""
    with capture_logs(processors=[merge_contextvars]) as logs:
        for hour in (3, 9, 14, 21):
            app = make_app(f"2025-05-03T{hour:02d}:00:00+09:00", IVR_PARTNERS_FILE=str(partners), **sms)
            for i, (keys, kwargs) in enumerate(SCRIPT):
                caller = CALLERS[(hour + i) % len(CALLERS)]
                monkeypatch.setattr(jobs, "HTTP_CLIENT", RecordingTwilio(caller))
                call(app, keys, caller=caller, **kwargs)
                placed += 1
            call(app, ["1"], caller="anonymous")
            placed += 1
            StandIn(InProcess(app), TOKEN, BASE, keys=["1001", "482193", "-"], caller="+15005550010").call(
                "/counselor/incoming")
            client = redis.Redis.from_url(redis_url)
            SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
            metrics_text += app.test_client().get("/metrics").get_data(as_text=True)
    monkeypatch.setenv("REDIS_URL", redis_url)
    assert main(["report", "--campaign", "gw-2025", "--out", str(tmp_path / "report")]) == 0
    assert main(["report", "--campaign", "gw-2025", "--out", str(tmp_path / "report"), "--publish"]) == 0

    places = {"logs": json.dumps(logs, ensure_ascii=False, default=str), "metrics": metrics_text,
              **stored_and_reported(redis_url, tmp_path / "report")}
    assert len(places) == 14 and all(len(text) > 60 for text in places.values())  # logs, metrics, redis, 11 files
    assert '"event": "webhook"' in places["logs"] and "ivr:agg:gw-2025:2025-05-03" in places["redis"]
    assert_no_number(places)

    day = report_day(tmp_path / "report")
    assert int(day["all"]["calls"]) == placed
    assert int(day["all"]["withheld_calls"]) == 4
    assert int(day["all"]["unique_callers"]) == len(CALLERS)
    assert sum(int(r["calls"]) for o, r in day.items() if o != "all") == placed


# -- the same day under load: two web instances behind one public URL, two RQ workers, one Redis ----------------
OPTION_OF = ["general", "under18", "women", "foreign", "disaster", "gender", "women"]  # what each SCRIPT call chose
PIN_HASH = (Path(__file__).parents[1] / "ops" / "partners.example.yaml").read_text(
    encoding="utf-8").split('pin_hash: "')[1].split('"')[0]  # counsellor 1001's: PIN 482193
COUNSELLORS = ('counsellors:\n  - id: "1001"\n    partner: tsunagari\n    numbers: ["+15005550010"]\n'
               f'    pin_hash: "{PIN_HASH}"\n')
FIRST_WAVE, ROUNDS, WITHHELD = 8, 4, 3  # women's callers at once (cap 3); rounds of SCRIPT; withheld-number calls


class LoadBalancer(OverHttp):
    """Twilio requesting the public URL, and a load balancer sending each request to the next instance in turn."""

    def __init__(self, instances: list[str], on_wait: Callable[[], object] = lambda: None):
        super().__init__()
        self.instances, self.turn, self.on_wait = instances, itertools.count(), on_wait

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
        if urllib.parse.urlsplit(url).path == "/voice/wait":
            self.on_wait()
        instance = self.instances[next(self.turn) % len(self.instances)]
        return super().post(url.replace(BASE, instance, 1), params, signature)


@dataclass
class LoadedDay:
    first_wave: list[CallResult]
    held_at_peak: list[int]  # places taken at the capped partner while the whole first wave waited
    rest: list[CallResult]
    leases_after: int
    aggregates: dict[str, dict[str, int]]
    callers: tuple[int, int, int]  # the day's folded count, whether its HyperLogLog is left, withheld calls
    calls_counted: list[int]  # ivr_calls_total per instance
    report: dict[str, dict[str, str]]
    places: dict[str, str]

    @property
    def placed(self) -> int:
        return len(self.first_wave) + len(self.rest)


@pytest.fixture(scope="module")
def loaded_day(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadedDay]:
    """Callers at once on two `ivr serve` instances (2 workers each, every request to the next instance) with two
    `rq worker`s, all on one Redis; the women's partner capped at 3. First 8 women's callers wait together, then
    rounds of the day's script, withheld numbers and a counsellor, six at a time. Then the report."""
    tmp = tmp_path_factory.mktemp("loaded-day")
    url, client = redis_server.url, redis.Redis.from_url(redis_server.url)
    client.flushall()
    (tmp / "partners.yaml").write_text(COUNSELLORS, encoding="utf-8")
    env = {"REDIS_URL": url, "IVR_CLOCK": "2025-05-03T03:00:00+09:00", "IVR_PUBLIC_URL": BASE,
           "IVR_ROUTING_FILE": capped_routing(tmp, capacity=3), "IVR_PARTNERS_FILE": str(tmp / "partners.yaml")}
    for name in ("a", "b"):
        (tmp / name).mkdir()
    workers = [rq_worker(url, log=tmp / f"rq-{n}.log") for n in (1, 2)]
    with contextlib.ExitStack() as stack:
        bases = [stack.enter_context(running_server(tmp / name, env, workers=2))[1] for name in ("a", "b")]
        peak: list[int] = []
        together = threading.Barrier(FIRST_WAVE, action=lambda: peak.append(client.zcard("ivr:lease:sakura")),
                                     timeout=60)
        waves = ThreadPoolExecutor(max_workers=FIRST_WAVE)
        first = list(waves.map(lambda n: StandIn(LoadBalancer(bases, together.wait), TOKEN, BASE, keys=["5"],
                                                 caller=CALLERS[n % len(CALLERS)]).call(), range(FIRST_WAVE)))
        script = [(keys, kw, CALLERS[(r + i) % len(CALLERS)]) for r in range(ROUNDS)
                  for i, (keys, kw) in enumerate(SCRIPT)] + [(["1"], {}, "anonymous")] * WITHHELD
        balancer = LoadBalancer(bases)
        with ThreadPoolExecutor(max_workers=6) as pool:
            rest = list(pool.map(lambda c: StandIn(balancer, TOKEN, BASE, keys=list(c[0]), caller=c[2],
                                                   **c[1]).call(), script))
            pool.submit(lambda: StandIn(balancer, TOKEN, BASE, keys=["1001", "482193", "-"],
                                        caller="+15005550010").call("/counselor/incoming")).result()
        queue = Queue("ivr", connection=client)
        wait_for(lambda: queue.count == 0 and StartedJobRegistry(queue=queue).count == 0, "both RQ workers done")
        assert all(w.poll() is None for w in workers) and FailedJobRegistry(queue=queue).count == 0
        metrics = []
        for base in bases:
            with urllib.request.urlopen(f"{base}/metrics", timeout=10) as resp:  # noqa: S310
                metrics.append(resp.read().decode())
    for w in workers:
        w.terminate()
        w.wait(timeout=30)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDIS_URL", url)
        assert main(["report", "--campaign", "gw-2025", "--out", str(tmp / "report")]) == 0
    opened = re.compile(r'^ivr_calls_total\{entry="other",window="open"\} (\d+)\.0$', re.M)
    places = {f"{name}/server.log": (tmp / name / "server.log").read_text() for name in ("a", "b")}
    places.update({f"rq-{n}.log": (tmp / f"rq-{n}.log").read_text() for n in (1, 2)})
    places.update({f"metrics-{n}": text for n, text in enumerate(metrics)})
    yield LoadedDay(first, peak, rest, client.zcard("ivr:lease:sakura"),
                    {k.decode(): {f.decode(): int(v) for f, v in client.hgetall(k).items()}
                     for k in client.scan_iter("ivr:agg:*")},
                    (int(client.get("ivr:callers-count:2025-05-03") or 0), client.exists("ivr:callers:2025-05-03"),
                     int(client.get("ivr:withheld:2025-05-03") or 0)),
                    [int(opened.findall(text)[0]) for text in metrics], report_day(tmp / "report"),
                    {**places, **stored_and_reported(url, tmp / "report")})
    client.flushall()


def test_two_instances_share_caps_counts_and_callers(loaded_day: LoadedDay) -> None:
    """With every step of every call going to the next of two instances, and two RQ workers folding: the capped
    partner holds no more than its 3 places and gets every one back, each finished call, option and queue or dial
    outcome is counted once, the day's unique callers are counted once across instances (folded into a plain count
    by the report, run once the day is over), and each instance's /metrics counts its share."""
    day = loaded_day
    assert [r.connected.target if r.connected else None for r in day.first_wave].count("queue women-sakura") == 3
    assert all(r.connected is not None for r in day.first_wave) and day.held_at_peak == [3]
    everyone = day.first_wave + day.rest
    assert not any(r.stranded or r.fallback_used for r in everyone)
    assert {status for r in everyone for _, status in r.requests} == {200, 204}
    assert day.leases_after == 0
    counts = day.aggregates["ivr:agg:gw-2025:2025-05-03"]
    assert counts["calls"] == day.placed == FIRST_WAVE + ROUNDS * len(SCRIPT) + WITHHELD
    chosen = Counter({"women": FIRST_WAVE, "general": WITHHELD})
    chosen.update(OPTION_OF * ROUNDS)
    assert {k.removeprefix("calls|"): v for k, v in counts.items() if k.count("|") == 1 and k.startswith("calls|")} \
        == dict(chosen)
    outcomes = sum(v for k, agg in day.aggregates.items() if k.count(":") == 4 for c, v in agg.items()
                   if c.startswith(("queue:", "dial:")))
    assert outcomes == sum(path in ("/voice/queue-done", "/voice/dial-done") for r in everyone for path, _ in r.requests)
    assert day.callers == (len(CALLERS), 0, WITHHELD)  # the report (a later day) folded the day's HyperLogLog
    assert (int(day.report["all"]["calls"]), int(day.report["all"]["unique_callers"])) == (day.placed, len(CALLERS))
    assert sum(day.calls_counted) == day.placed and min(day.calls_counted) > 0


def test_a_loaded_day_leaves_no_number_anywhere(loaded_day: LoadedDay) -> None:
    """After the day under load: no caller's number in either instance's log or metrics, the RQ workers' logs,
    Redis or the report; and every JSON log line of the two workers sharing a log is whole."""
    places = loaded_day.places
    assert len(places) == 12 and all(len(text) > 60 for text in places.values())  # logs, metrics, redis, report
    assert_no_number(places)
    for name in ("a/server.log", "b/server.log"):
        lines = [json.loads(x) for x in places[name].splitlines() if x.startswith("{")]
        assert sum(e.get("event") == "webhook" for e in lines) > 50
