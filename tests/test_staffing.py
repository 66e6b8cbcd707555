"""A simulated campaign through the stand-in, then what partners ask before and after one: `ivr staffing` for the
next window, and `ivr report --publish` from which no hidden count can be worked out."""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import structlog
from rq import Queue, SimpleWorker

from common.erlang import seats_needed
from common.facts import JST, parse_instant
from ivr.app import create_app
from ivr.cli import main
from ivr.clock import Clock
from ivr.tools.standin import Event, InProcess, StandIn
from tests.support import BASE, TOKEN, RedisServer
from tests.test_disclosure import linked_leaks, recovered

OPENS = parse_instant("2025-05-02T10:00:00+09:00")  # gw-2025
HOURS = 120
KEYS = {"general": ["1"], "under18": ["2"], "gender": ["4"], "women": ["5"], "disaster": ["6"]}
FOREIGN = {"en": "1", "zh": "2", "th": "9", "ne": "0"}  # the language choice's keys (menus/menu.yaml)
CAPS = {"general-tsunagari": 3, "women-sakura": 1, "gender-niji": 2}  # places configured for the next window


def routing_with_caps(tmp: Path) -> Path:
    """The shipped routing file with places for three partners (none has a cap there)."""
    text = (Path(__file__).parents[1] / "routing" / "routing.yaml").read_text(encoding="utf-8")
    for queue, cap in CAPS.items():
        assert f"    queue: {queue}\n" in text
        text = text.replace(f"    queue: {queue}\n", f"    queue: {queue}\n    capacity: {cap}\n")
    path = tmp / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Campaign:
    """What the simulation placed, to check the aggregates and reports against."""

    placed: Counter[tuple[str, int]]  # (option, JST hour) -> calls
    talk: Counter[tuple[str, int]]  # (option, JST hour) -> seconds talked
    talked: Counter[tuple[str, int]]
    langs: Counter[str]
    out: Path
    env: dict[str, str]
    aggregates: dict[str, dict[str, int]]


def script(rng: random.Random, hour: int) -> list[tuple[str, list[str], str, int]]:
    """This hour's callers: (option, keys, queue result, talk seconds), more in the evening and at night."""
    busy = 8 if hour in (20, 21, 22, 23) else 4 if 12 <= hour < 20 else 2
    out = []
    for _ in range(rng.randint(busy // 2, busy)):
        option = rng.choices(["general", "women", "under18", "gender", "foreign", "disaster"],
                             weights=[50, 20, 10, 8, 5, 2])[0]
        if option == "foreign":
            lang = rng.choice(["en", "en", "zh", "th", "ne"])
            keys = ["3", FOREIGN[lang]]
        else:
            keys = KEYS[option]
        result = rng.choices(["bridged", "hangup", "queue-full"], weights=[80, 12, 8])[0]
        out.append((option, keys, result, rng.randint(600, 1500)))
    return out


@pytest.fixture(scope="module")
def campaign(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Campaign]:
    """Five days of gw-2025, hour by hour, a few hundred callers through the stand-in on one app whose clock moves
    with the calls (a counsellor's conversation takes its minutes); then the RQ worker folds every call."""
    tmp = tmp_path_factory.mktemp("campaign")
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    routing = routing_with_caps(tmp)
    now = [0.0]
    clock = Clock(OPENS, source=lambda: now[0])
    app = create_app({"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": redis_server.url, "IVR_LOG_LEVEL": "warning",
                      "IVR_ROUTING_FILE": str(routing), "CLOCK": clock})
    rng = random.Random(9999)
    placed: Counter[tuple[str, int]] = Counter()
    talk: Counter[tuple[str, int]] = Counter()
    talked: Counter[tuple[str, int]] = Counter()
    langs: Counter[str] = Counter()
    for h in range(HOURS):
        start = h * 3600.0
        for option, keys, result, seconds in script(rng, (OPENS + dt.timedelta(hours=h)).astimezone(JST).hour):
            now[0] = start = start + 3
            hour = clock.now().astimezone(JST).hour

            def speak(event: Event, seconds: int = seconds, result: str = result) -> None:
                if event.kind == "connected" and result == "bridged" and event.target.startswith("queue"):
                    now[0] += seconds  # the conversation, then Twilio requests the queue's action

            dial = option == "disaster"
            StandIn(InProcess(app), TOKEN, BASE, keys=list(keys), queue_result=result, wait_rounds=[0],
                    caller="+819012345678", printer=speak).call()
            placed[(option, hour)] += 1
            langs[next(lg for lg, k in FOREIGN.items() if k == keys[1]) if option == "foreign" else "ja"] += 1
            if dial or result == "bridged":
                talk[(option, hour)] += 300 if dial else seconds  # the stand-in's DialCallDuration is 300
                talked[(option, hour)] += 1
    SimpleWorker([Queue("ivr", connection=client)], connection=client).work(burst=True)
    aggregates = {k.decode(): {f.decode(): int(v) for f, v in client.hgetall(k).items()}
                  for k in client.scan_iter("ivr:agg:gw-2025:*")}
    env = {"REDIS_URL": redis_server.url, "IVR_ROUTING_FILE": str(routing)}
    yield Campaign(placed, talk, talked, langs, tmp / "out", env, aggregates)
    client.flushall()
    structlog.reset_defaults()  # logging is set up once per process: the next app's (info) level, not this quiet one


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_talk_time_is_summed_per_hour_and_option(campaign: Campaign) -> None:
    """The staffing plan's handling times come from the calls: every second talked is in its hour's and option's
    sum, every call that talked is counted, and nothing is kept per call."""
    days = {k: v for k, v in campaign.aggregates.items() if k.count(":") == 3}
    assert len(days) == 6  # 2 to 7 May
    summed: Counter[tuple[str, int]] = Counter()
    counted: Counter[tuple[str, int]] = Counter()
    for counts in days.values():
        for name, value in counts.items():
            kind, _, rest = name.partition("|")
            if kind in ("talk", "talked"):
                option, hour = rest.split("|")
                (summed if kind == "talk" else counted)[(option, int(hour[1:]))] += value
    assert summed == campaign.talk and counted == campaign.talked
    assert sum(campaign.placed.values()) == sum(c["calls"] for c in days.values()) > 300
    langs: Counter[str] = Counter()
    for counts in days.values():
        langs.update({name.split("|")[1]: v for name, v in counts.items() if name.startswith("lang|")
                      and name.count("|") == 1})
    assert langs.total() == campaign.langs.total() and langs["ne"] == campaign.langs["ne"] > 0


def test_staffing_plan_for_the_next_window(campaign: Campaign, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Before the New Year 2026-27 window, from GW 2025's calls: seats per hour and option, and every hour in which
    a partner's places are fewer than Erlang C asks is flagged, in the terminal, the CSV and the heat-map."""
    for k, v in campaign.env.items():
        monkeypatch.setenv(k, v)
    out = campaign.out / "staffing"
    assert main(["staffing", "--campaign", "newyear-2026", "--from", "gw-2025", "--answer-within", "60s",
                 "--target", "0.8", "--scale", "1.2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "newyear-2026: seats needed / places on shift" in printed and "from gw-2025" in printed
    rows = read_csv(out / "staffing-newyear-2026.csv")
    assert len(rows) == 240 * 6  # ten days of 24 hours, six options
    assert (out / "staffing-newyear-2026.png").read_bytes()[:4] == b"\x89PNG"
    short = [r for r in rows if r["short"] == "yes"]
    for r in rows:
        arrivals, aht = float(r["arrivals"]), float(r["aht_s"] or 0)
        assert int(r["seats_needed"]) == (seats_needed(arrivals, aht, 60, 0.8) if arrivals else 0)
        if r["capacity"] and int(r["seats_needed"]) > int(r["capacity"]):
            assert r["short"] == "yes", r  # at least every hour whose places are below the need
    assert {r["option"] for r in short} >= {"women"} and len(short) < len(rows)
    assert any(r["option"] == "women" and r["capacity"] == "1" and int(r["seats_needed"]) > 1 for r in short)
    general = next(r for r in rows if r["option"] == "general" and r["hour_jst"] == "2026-12-26 21:00")
    assert campaign.talked[("general", 21)] >= 5 and general["aht_from"] == "hour"
    assert general["aht_s"] == f"{campaign.talk[('general', 21)] / campaign.talked[('general', 21)]:.0f}"
    night = next(r for r in rows if r["option"] == "under18" and r["hour_jst"] == "2026-12-26 03:00")
    assert (night["arrivals"], night["on_shift"], night["short"]) == ("0.00", "", "")  # its callers: general line
    flagged = {line[:16] for line in printed.splitlines() if "!" in line and line[:2] == "20"}
    assert flagged == {r["hour_jst"] for r in short}


def test_staffing_without_past_counts_uses_the_arrivals_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A campaign nobody called yet says so, and plans from the arrivals given by hand; with none given it stops
    and says what to give (here on an empty embedded store)."""
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("IVR_STATE_DIR", str(tmp_path / "state"))
    assert main(["staffing", "--campaign", "newyear-2026", "--from", "gw-2024"]) == 2
    assert "give --from with a campaign that has counts, or --arrivals-per-hour" in capsys.readouterr().err
    assert main(["staffing", "--campaign", "newyear-2026", "--from", "gw-2024", "--arrivals-per-hour",
                 "general=6,women=2", "--aht", "20m", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "no counts for gw-2024" in printed and "using --arrivals-per-hour by hand" in printed
    rows = {(r["hour_jst"], r["option"]): r for r in read_csv(tmp_path / "staffing-newyear-2026.csv")}
    assert rows[("2026-12-26 12:00", "general")]["seats_needed"] == str(seats_needed(6, 1200, 60, 0.8))
    assert rows[("2026-12-26 12:00", "women")]["seats_needed"] == str(seats_needed(2, 1200, 60, 0.8))


def test_an_unshared_shift_fills_its_first_partner_before_the_next(tmp_path: Path) -> None:
    """On 26 December at 20:00 the general line has two partners on shift and no `share` rule: calls go to the first
    (3 places) and only its overflow to the second (1 place). Four calls an hour fit the first's places, so the hour
    is not short (split half and half, the second would have needed 2 places); six an hour overflow past both."""
    from ivr.tools import staffing
    from routing.check import load_routing

    path = routing_with_caps(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    queue: general-aozora\n", "    queue: general-aozora\n    capacity: 1\n"),
                    encoding="utf-8")
    routing = load_routing(path)
    nxt = next(c for c in routing.campaigns if c.id == "newyear-2026")
    assert routing.plans[nxt.plan]["general"].share is None

    def at_eight(calls: float) -> staffing.Need:
        needs = staffing.plan(routing, nxt, ["general"], None, given={"general": calls}, scale=1.0, aht=1200,
                              within=60, target=0.8, language_option=None)
        return next(n for n in needs if n.hour == dt.datetime(2026, 12, 26, 20, tzinfo=JST))

    quiet, busy = at_eight(4), at_eight(6)
    assert quiet.on_shift == ("tsunagari", "aozora") and quiet.seats == seats_needed(4, 1200, 60, 0.8) == 3
    assert (quiet.capacity, quiet.short) == (4, False)
    assert busy.short


def grid(rows: list[dict[str, str]], measure: str, options: list[str]) -> list[list[str]]:
    """One measure of the published report as the table it is (days, then the total; options, none, then all)."""
    by = {(r["date"], r["option"]): r[measure] for r in rows}
    dates = list(dict.fromkeys(r["date"] for r in rows))
    assert dates[-1] == "total"
    return [[by[(d, o)] for o in [*options, "none", "all"]] for d in dates]


def test_published_report_gives_no_hidden_count_away(campaign: Campaign, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the campaign: in the published report no count from 1 to 4 appears, no rate stands beside a hidden
    count, and subtraction from the totals recovers no hidden count, by day and option, by language and by
    partner; the operators' report stays exact; the summary for the record names only published numbers."""
    for k, v in campaign.env.items():
        monkeypatch.setenv(k, v)
    out = campaign.out / "report"
    assert main(["report", "--campaign", "gw-2025", "--out", str(out)]) == 0
    assert main(["report", "--campaign", "gw-2025", "--out", str(out), "--publish"]) == 0
    options = ["general", "under18", "foreign", "gender", "women", "disaster"]
    published, exact = read_csv(out / "report-gw-2025-published.csv"), read_csv(out / "report-gw-2025.csv")
    hidden = 0
    for measure in ("calls", "answered", "abandoned", "overflowed", "referred"):
        table, truth = grid(published, measure, options), grid(exact, measure, options)
        assert recovered(table) == set(), measure
        for row, true_row in zip(table, truth, strict=True):
            for cell, true in zip(row, true_row, strict=True):
                assert cell in ("<5", "x", true) and cell not in ("1", "2", "3", "4")
                assert cell != "<5" or 0 < int(true) < 5
                hidden += cell in ("<5", "x")
    assert hidden > 10  # the simulation has small groups: the check checked something
    for r in published:
        assert r["answer_rate"] == "" or (r["calls"].isdigit() and r["answered"].isdigit())
    totals = [(grid(published, m, options), [[int(v) for v in row] for row in grid(exact, m, options)])
            for m in ("calls", "answered")]
    for name, columns in (("language", ["answered", "not_answered", "all"]),
                          ("partner", ["answered", "passed_on", "caller_hung_up", "all"])):
        table = read_csv(out / f"by-{name}-gw-2025-published.csv")
        cells = [[r[c] for c in columns] for r in table]
        truth = [[int(r[c]) for c in columns] for r in read_csv(out / f"by-{name}-gw-2025.csv")]
        assert linked_leaks([*totals, (cells, truth)], [(0, 2), (1, 2)]) == set(), name  # beside the report's totals
        assert not any(c in ("1", "2", "3", "4") for row in cells for c in row)
        assert len(table) >= 3
    languages = {r["language"]: r for r in read_csv(out / "by-language-gw-2025.csv")}
    assert int(languages["ne"]["all"]) == campaign.langs["ne"]  # exact for the operators
    summary = (out / "summary-gw-2025.md").read_text(encoding="utf-8")
    total = next(r for r in published if r["date"] == "total" and r["option"] == "all")
    assert f"- Calls: {total['calls']}" in summary and "## By language" in summary and "## By partner" in summary
    assert "(calls-per-hour-gw-2025-published.png)" in summary and "(answer-rate-gw-2025-published.png)" in summary
    assert (out / "calls-per-hour-gw-2025-published.png").read_bytes()[:4] == b"\x89PNG"


def test_published_hours_are_binned_to_at_least_k_calls() -> None:
    """The published chart never plots a quiet hour exactly: hours merge into bins of 5 or more calls that add up to
    the day's published count, a quiet end joining the bin before it."""
    from ivr.tools.published import day_bins

    start = dt.datetime(2025, 5, 3, tzinfo=JST)
    hours = [(start + dt.timedelta(hours=h), n) for h, n in enumerate([1, 0, 2, 3, 9, 0, 5, 1, 2])]
    bins = day_bins(hours, 5)
    assert [(first.hour, width, n) for first, width, n in bins] == [(0, 4, 6), (4, 1, 9), (5, 4, 8)]
    assert sum(n for *_, n in bins) == 23 and all(n >= 5 for *_, n in bins)
