"""Live controls during a campaign: a pause, a closed option, reload everywhere, through the admin API and `ivr ops`,
obeyed by every instance sharing one Redis, audited with who did it; partners sharing a shift share the calls."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from structlog.testing import capture_logs

from common.facts import parse_instant
from ivr.cli import main
from ivr.state.controls import REFRESH
from tests.support import BASE, AppFactory, RedisServer, call, signed
from tests.test_queue import press, wait_doc

OPEN = "2025-05-03T03:00:00+09:00"
ADMIN = "ops-token-0123456789"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
SHIPPED = Path(__file__).parents[1] / "routing" / "routing.yaml"


class Later:
    """A process's monotonic clock, moved on by hand: 'half a second later' without sleeping."""

    def __init__(self) -> None:
        self.t = time.monotonic()

    def __call__(self) -> float:
        return self.t

    def on(self, seconds: float = REFRESH) -> None:
        self.t += seconds


def instance(make_app: AppFactory, **overrides: object) -> tuple[Any, Later]:
    """One web instance on the shared Redis, with the admin token, whose controls' clock the test moves."""
    app = make_app(OPEN, IVR_ADMIN_TOKEN=ADMIN, **overrides)
    later = Later()
    app.extensions["ivr.controls"].monotonic = later
    return app, later


def ops(app: Any, action: str, **body: str) -> Any:
    return app.test_client().post(f"/admin/ops/{action}", json=body, headers=AUTH)


def sid(n: int) -> str:
    return f"CA{n:032x}"


def test_a_pause_through_one_instance_reroutes_the_other(make_app: AppFactory) -> None:
    """A partner's phones are down: paused on one instance, the other routes its next caller past it within a
    second; resumed, callers reach it again; the audit log names who did each."""
    a, _ = instance(make_app)
    b, b_later = instance(make_app)
    assert press(b, sid(1), "5") == "women-sakura"
    resp = ops(a, "pause", target="sakura", by="yamada", why="phones down", **{"for": "30m"})
    assert (200, "pause", "yamada") == (resp.status_code, resp.get_json()["done"], resp.get_json()["by"])
    b_later.on()
    assert press(b, sid(2), "5") == "general-tsunagari"
    assert ops(a, "resume", target="sakura", by="sato").status_code == 200
    b_later.on()
    assert press(b, sid(3), "5") == "women-sakura"
    audit = b.test_client().get("/admin/ops/status", headers=AUTH).get_json()["audit"]
    assert [(e["action"], e["target"], e["by"], e["why"]) for e in audit] == [
        ("resume", "sakura", "sato", ""), ("pause", "sakura", "yamada", "phones down")]


def test_a_paused_partners_waiting_callers_move_on(make_app: AppFactory) -> None:
    """A caller already waiting at a paused partner leaves its queue at the next wait round, on to the next
    partner, instead of waiting for phones that are down."""
    app, _ = instance(make_app)
    assert [v.tag for v in wait_doc(app, queue_time=40)][:1] == ["Say"]
    assert ops(app, "pause", target="sakura", by="yamada").status_code == 200
    assert [v.tag for v in wait_doc(app, queue_time=40)] == ["Leave"]
    assert ">general-tsunagari</Enqueue>" in queue_done(app, "o=women&l=ja&s=0&p=sakura", "CA" + "c" * 32)


def queue_done(app: Any, query: str, call_sid: str, result: str = "leave") -> str:
    """The TwiML answering Twilio's request after the caller left a queue (`query`: the action URL's parameters)."""
    path, params = f"/voice/queue-done?{query}", {"CallSid": call_sid, "QueueResult": result}
    resp = app.test_client().post(path, data=params, base_url=BASE,
                                  headers={"X-Twilio-Signature": signed(BASE + path, params)})
    assert resp.status_code == 200
    return str(resp.get_data(as_text=True))


def one_call_at_each(app, first: int) -> list[tuple[str, str, str, int]]:  # type: ignore[no-untyped-def]
    """Twenty calls pressing 1 on the shared shift (CallSids from `first`): for each of the two partners, a call the
    draw gave it, as (its queue, the partner, the other partner, the call's number)."""
    given = {press(app, sid(first + n), "1"): first + n for n in range(20)}
    assert set(given) == {"general-tsunagari", "general-aozora"}
    return [(q, q.removeprefix("general-"), "aozora" if q == "general-tsunagari" else "tsunagari", n)
            for q, n in given.items()]


def test_a_paused_sharing_partners_callers_move_on_to_the_other(make_app: AppFactory, tmp_path: Path) -> None:
    """Phones down at one of two partners sharing a shift: its waiting callers go on to the other partner of the
    shift (on shift and free), not to the referral lines."""
    app, later = instance(make_app, IVR_ROUTING_FILE=shared_routing(tmp_path, "weighted"))
    for queue, partner, other, n in one_call_at_each(app, 4000):
        assert ops(app, "pause", target=partner, by="yamada", why="phones down").status_code == 200
        later.on()
        assert [v.tag for v in wait_doc(app, queue_time=40, partner=partner, option="general")] == ["Leave"]
        text = queue_done(app, f"o=general&l=ja&s=0&p={partner}&f={partner}&q={queue}", sid(n))
        assert f">general-{other}</Enqueue>" in text
        assert ops(app, "resume", target=partner, by="yamada").status_code == 200
        later.on()


def test_closing_the_urgent_option_keeps_its_callers_first_in_line(make_app: AppFactory) -> None:
    """In the 2022 trial an operator closes the urgent option (死にたいほどつらい, key 3): a caller who presses 3 is
    told it is closed and put through to the general line on its urgent lane, still taken first."""
    app = make_app("2022-07-08T12:00:00+09:00", IVR_ADMIN_TOKEN=ADMIN)
    assert press(app, sid(20), "3") == "crisis-yorube-urgent"
    assert ops(app, "close", target="suicidal", by="yamada", why="phones down").status_code == 200
    assert press(app, sid(21), "3") == "general-tsunagari-urgent"


def test_an_announcement_plays_when_nobody_is_on_shift(make_app: AppFactory, tmp_path: Path) -> None:
    """Nobody on any shift (the caller goes straight to the general line's overflow): the operator's announcement
    is still said after the greeting and the 110/119 notice."""
    from tests.test_plans import base, load

    routing, _ = load(tmp_path, base(general={"shifts": [{"partner": "b", "from": "00:00", "to": "24:00"}],
                                               "overflow": ["a"]}))  # b keeps 10:00-12:00: not in at 03:00
    app, _ = instance(make_app, IVR_ROUTING_FILE=str(routing))
    assert ops(app, "announce", target="congestion", by="yamada").status_code == 200
    result = call(app, [])
    assert result.heard()[1:4] == [
        "いま命の危険があるときは、すぐに110番か119番に電話してください。",
        "ただいま、お電話が大変つながりにくくなっています。長くお待ちいただくことがあります。"
        "つながらないときは、時間をおいて、もう一度おかけください。",
        "Our lines are very busy right now, and you may have to wait a long time. If you cannot get through, "
        "please call again later."]
    assert result.connected is not None and result.connected.target == "queue qa"


def test_a_closed_option_sends_its_callers_to_the_general_line(make_app: AppFactory) -> None:
    """An option closed by an operator is not offered, and a caller pressing it is told so and put through to the
    general line; the general line itself cannot be closed."""
    app, _ = instance(make_app)
    assert ops(app, "close", target="women", by="yamada").status_code == 200
    assert press(app, sid(4), "5") == "general-tsunagari"
    refused = ops(app, "close", target="general", by="yamada")
    assert refused.status_code == 400 and "general line" in refused.get_json()["detail"]
    assert ops(app, "open", target="women", by="yamada").status_code == 200
    assert press(app, sid(5), "5") == "women-sakura"


@pytest.mark.parametrize(("body", "detail"), [
    ({"target": "sakura"}, "--by NAME"),
    ({"target": "nobody", "by": "yamada"}, "unknown partner 'nobody'; allowed: aozora, hinagiku"),
    ({"target": "sakura", "by": "yamada", "for": "soon"}, "write a number and a unit"),
])
def test_a_control_without_who_or_with_a_wrong_target_is_refused(make_app: AppFactory, body: dict[str, str],
                                                                 detail: str) -> None:
    """Nobody changes the routing without being named in the audit log, or pauses a partner that does not exist."""
    app, _ = instance(make_app)
    resp = ops(app, "pause", **body)
    assert resp.status_code == 400 and detail in resp.get_json()["detail"]
    assert app.test_client().get("/admin/ops/status", headers=AUTH).get_json()["controls"] == []


def test_controls_need_the_admin_token(make_app: AppFactory) -> None:
    """Without the bearer token the controls answer 401 and change nothing."""
    app, _ = instance(make_app)
    resp = app.test_client().post("/admin/ops/pause", json={"target": "sakura", "by": "x"})
    assert (401, 'Bearer realm="ivr-admin"') == (resp.status_code, resp.headers["WWW-Authenticate"])
    assert press(app, sid(6), "5") == "women-sakura"


def test_with_redis_down_the_last_controls_seen_are_kept(make_app: AppFactory, own_redis: RedisServer) -> None:
    """Redis fails during a pause: the instance keeps the partner paused rather than sending callers back to it."""
    app, later = instance(make_app, REDIS_URL=own_redis.url)
    assert ops(app, "pause", target="sakura", by="yamada").status_code == 200
    assert press(app, sid(7), "5") == "general-tsunagari"
    own_redis.stop()
    later.on(5)
    with capture_logs() as logs:
        assert press(app, sid(8), "5") == "general-tsunagari"
    assert "controls_unreadable" in [e["event"] for e in logs]


def test_a_pause_for_a_while_ends_by_itself(make_app: AppFactory) -> None:
    """`--for 30m` ends after thirty minutes without anyone resuming."""
    app, later = instance(make_app)
    controls = app.extensions["ivr.controls"]
    assert ops(app, "pause", target="sakura", by="yamada", **{"for": "30m"}).status_code == 200
    assert press(app, sid(9), "5") == "general-tsunagari"
    start = controls.wall()
    controls.wall = lambda: start + 30 * 60 + 1
    later.on()
    assert press(app, sid(10), "5") == "women-sakura"


def test_reload_everywhere_reports_each_process(make_app: AppFactory, tmp_path: Path) -> None:
    """`ivr ops reload`: each instance validates its files, applies or refuses, and says so with its config hash."""
    routing = tmp_path / "routing.yaml"
    routing.write_text(SHIPPED.read_text(encoding="utf-8"), encoding="utf-8")
    app, later = instance(make_app, IVR_ROUTING_FILE=str(routing))
    ident = app.test_client().post("/admin/ops/reload", json={"by": "yamada"}, headers=AUTH).get_json()["id"]
    later.on()
    assert app.test_client().get("/healthz").status_code == 200  # the next request after a read takes it
    answers = app.test_client().get(f"/admin/ops/reload?id={ident}", headers=AUTH).get_json()["instances"]
    assert [(a["result"], a["hash"]) for a in answers.values()] == [
        ("unchanged", app.extensions["ivr.config"].current.digest)]
    routing.write_text("campaigns: [", encoding="utf-8")
    ident = app.test_client().post("/admin/ops/reload", json={"by": "yamada"}, headers=AUTH).get_json()["id"]
    later.on()
    app.test_client().get("/healthz")
    answers = app.test_client().get(f"/admin/ops/reload?id={ident}", headers=AUTH).get_json()["instances"]
    assert [a["result"] for a in answers.values()] == ["refused"]


def test_an_announcement_plays_after_the_greeting_until_cleared(make_app: AppFactory) -> None:
    """A surge: callers hear the prepared congestion notice after the greeting and the 110/119 notice, in Japanese
    and English, and in their own language once they choose one; cleared, it is gone."""
    app, later = instance(make_app)
    assert ops(app, "announce", target="congestion", by="yamada", until="2099-01-01T00:00:00+09:00").status_code == 200
    heard = call(app, ["5"]).heard()
    assert heard[1:4] == ["いま命の危険があるときは、すぐに110番か119番に電話してください。",
                          "ただいま、お電話が大変つながりにくくなっています。長くお待ちいただくことがあります。"
                          "つながらないときは、時間をおいて、もう一度おかけください。",
                          "Our lines are very busy right now, and you may have to wait a long time. If you cannot get "
                          "through, please call again later."]
    assert "지금 전화가 매우 혼잡합니다. 오래 기다리실 수 있습니다. 연결되지 않으면 잠시 후 다시 걸어 주십시오." in \
        call(app, ["3", "3"]).heard("ko-KR")
    assert ops(app, "announce-clear", by="yamada").status_code == 200
    later.on()
    assert not any("つながりにくく" in line for line in call(app, ["5"]).heard())


def test_only_prepared_announcements_can_be_played(make_app: AppFactory) -> None:
    """An operator cannot make the line say words nobody prepared and translated; a time already past is refused."""
    app, _ = instance(make_app)
    resp = ops(app, "announce", target="free text", by="yamada")
    assert resp.status_code == 400
    assert resp.get_json()["detail"] == ("unknown announcement 'free text'; prepared ones in the menu file: "
                                         "congestion, disaster, hours")
    resp = ops(app, "announce", target="disaster", by="yamada", until="2020-01-01T00:00:00+09:00")
    assert resp.status_code == 400 and "has already passed" in resp.get_json()["detail"]


# -- the command line ---------------------------------------------------------------------------------------------
def test_ivr_ops_pause_status_and_resume(make_app: AppFactory, redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """An operator pauses a partner from the terminal; a running instance obeys it; status lists who did it."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    app, later = instance(make_app)
    assert main(["ops", "pause", "sakura", "--by", "yamada", "--why", "phones down", "--for", "1h"]) == 0
    assert "pause sakura until " in capsys.readouterr().out
    later.on()
    assert press(app, sid(11), "5") == "general-tsunagari"
    assert main(["ops", "status"]) == 0
    out = capsys.readouterr().out
    assert "  pause sakura since " in out and "by yamada: phones down" in out
    assert any(line.split()[:7] == ["sakura", "0", "0s", "300s", "0", "-", "PAUSED"] for line in out.splitlines())
    assert main(["ops", "resume", "sakura", "--by", "sato"]) == 0
    assert capsys.readouterr().out.startswith("resume sakura, by sato;")
    later.on()
    assert press(app, sid(12), "5") == "women-sakura"
    assert main(["ops", "status", "--json"]) == 0
    now = json.loads(capsys.readouterr().out)
    assert now["controls"] == [] and [e["by"] for e in now["audit"]][:2] == ["sato", "yamada"]


def test_ivr_ops_reload_prints_what_each_process_did(make_app: AppFactory, redis_url: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`ivr ops reload` names each process that answered, with the config hash it serves and what it did."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    app, later = instance(make_app)

    def an_instance_takes_a_request(_seconds: float) -> None:  # while the command waits for answers
        later.on()
        app.test_client().get("/healthz")

    monkeypatch.setattr("ivr.tools.ops.time.sleep", an_instance_takes_a_request)
    assert main(["ops", "reload", "--by", "yamada", "--wait", "0.2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("reload ") and " asked by yamada" in out[0]
    (answer,) = out[1:]
    assert answer.split()[1:3] == ["unchanged", app.extensions["ivr.config"].current.digest]


def test_ivr_ops_needs_by_and_redis(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A change without --by is refused before anything is written; without REDIS_URL the command says why."""
    with pytest.raises(SystemExit) as exit_:
        main(["ops", "pause", "sakura"])
    assert exit_.value.code == 2 and "--by" in capsys.readouterr().err
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert main(["ops", "pause", "sakura", "--by", "yamada"]) == 2
    assert "REDIS_URL is not set" in capsys.readouterr().err


def test_ivr_ops_help_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    """An operator in a hurry finds the steps for phones down, a surge and a disaster in the help."""
    with pytest.raises(SystemExit):
        main(["ops", "--help"])
    out = capsys.readouterr().out
    for words in ("a partner's phones are down", "a surge", "a disaster", "ivr ops pause PARTNER --for 30m"):
        assert words in out


# -- sharing a shift ----------------------------------------------------------------------------------------------
def shared_routing(tmp_path: Path, share: str) -> str:
    text = SHIPPED.read_text(encoding="utf-8")
    plain = '    general:\n      shifts: [{partner: tsunagari, from: "00:00", to: "24:00"}]\n      overflow: [aozora]\n'
    shared = ('    general:\n      shifts: [{partner: tsunagari, from: "00:00", to: "24:00"},\n'
              f'               {{partner: aozora, from: "00:00", to: "24:00"}}]\n      share: {share}\n')
    assert text.count(plain) == 2
    text = text.replace(plain, shared, 1).replace("    queue: general-tsunagari\n",
                                                  "    queue: general-tsunagari\n    weight: 2\n")
    path = tmp_path / "routing.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_weighted_two_to_one_over_300_calls(make_app: AppFactory, tmp_path: Path) -> None:
    """Two partners share the general line's shift 2:1: both receive calls, about two in three and one in three."""
    app, _ = instance(make_app, IVR_ROUTING_FILE=shared_routing(tmp_path, "weighted"))
    queues = [press(app, sid(1000 + n), "1") for n in range(300)]
    counts = {q: queues.count(q) for q in set(queues)}
    assert set(counts) == {"general-tsunagari", "general-aozora"}
    assert 170 <= counts["general-tsunagari"] <= 230, counts


def test_a_shared_call_keeps_its_partner_order_when_it_rolls_over(make_app: AppFactory, tmp_path: Path) -> None:
    """A caller the draw gave to one partner rolls over to the other sharing partner, not back to the first."""
    app, _ = instance(make_app, IVR_ROUTING_FILE=shared_routing(tmp_path, "weighted"))
    for queue, partner, other, n in one_call_at_each(app, 2000):
        path = f"/voice/queue-done?o=general&l=ja&s=0&p={partner}&f={partner}&q={queue}"
        params = {"CallSid": sid(n), "QueueResult": "leave"}
        text = app.test_client().post(path, data=params, base_url=BASE,
                                      headers={"X-Twilio-Signature": signed(BASE + path, params)}).get_data(as_text=True)
        assert f">general-{other}</Enqueue>" in text


def test_least_waiting_takes_the_partner_with_fewer_callers(make_app: AppFactory, tmp_path: Path,
                                                             redis_url: str) -> None:
    """With callers waiting at one partner, the next caller goes to the other sharing partner."""
    app, _ = instance(make_app, IVR_ROUTING_FILE=shared_routing(tmp_path, "least-waiting"))
    assert press(app, sid(3000), "1") == "general-tsunagari"  # nobody waits: the shift's order
    client = redis.Redis.from_url(redis_url)
    client.zadd("ivr:waiting:general-tsunagari", {"CA" + "d" * 32: time.time(), "CA" + "e" * 32: time.time()})
    assert press(app, sid(3001), "1") == "general-aozora"


def test_until_needs_an_instant_with_its_zone() -> None:
    """`--until` is an instant with its zone (JST or another), in the future; anything else is refused with a line
    that says what to write."""
    from ivr.state.operate import OpsRefused, until_of

    now = parse_instant("2025-05-03T03:00:00+09:00").timestamp()
    assert until_of(None, "2025-05-03T09:00:00+09:00", now) == now + 6 * 3600
    assert until_of(None, "2025-05-03T00:00:00Z", now) == now + 6 * 3600
    for wrong, says in (("2025-05-03T09:00:00", "has no zone"), ("tomorrow", "is not an ISO-8601 instant"),
                        ("2025-05-02T09:00:00+09:00", "has already passed")):
        with pytest.raises(OpsRefused, match=says):
            until_of(None, wrong, now)
