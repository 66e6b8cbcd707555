"""Config reload: applied changes, broken files kept out of service, audit lines, secrets from outside the repo."""

from __future__ import annotations

import os
import shutil
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from ivr.state.config import request_reload
from ivr.tools.standin import OverHttp, StandIn
from routing import ConfigError
from tests.support import TOKEN, AppFactory, call, running_server

ROOT = Path(__file__).parents[1]
OPEN = "2025-05-03T03:00:00+09:00"
ADMIN = "admin-token-for-tests"
WOMEN_TO_NIJI = ('      shifts: [{partner: sakura, from: "00:00", to: "24:00"}]\n      referrals: [dv-plus, yorisoi]\n'
                 '    disaster:\n      shifts: [{partner: hinata, from: "00:00", to: "24:00"}]\n\n  # The July')


def copies(tmp_path: Path) -> tuple[Path, Path]:
    menu, routing = tmp_path / "menu.yaml", tmp_path / "routing.yaml"
    shutil.copyfile(ROOT / "menus" / "menu.yaml", menu)
    shutil.copyfile(ROOT / "routing" / "routing.yaml", routing)
    return menu, routing


def women_to_niji(routing: Path) -> None:
    text = routing.read_text(encoding="utf-8")
    assert WOMEN_TO_NIJI in text
    routing.write_text(text.replace(WOMEN_TO_NIJI, WOMEN_TO_NIJI.replace("partner: sakura", "partner: niji", 1)),
                       encoding="utf-8")


def reload(app, token: str | None = ADMIN):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().post("/admin/reload", headers=headers)


@pytest.fixture
def app_on_copies(make_app: AppFactory, tmp_path: Path):  # type: ignore[no-untyped-def]
    menu, routing = copies(tmp_path)
    app = make_app(OPEN, IVR_MENU_FILE=str(menu), IVR_ROUTING_FILE=str(routing), IVR_ADMIN_TOKEN=ADMIN,
                   IVR_RUNTIME_DIR=str(tmp_path / "runtime"))
    return app, routing


def test_admin_endpoint_needs_the_token(make_app: AppFactory, app_on_copies) -> None:  # type: ignore[no-untyped-def]
    """Without IVR_ADMIN_TOKEN the endpoint does not exist; a wrong or missing bearer gets 401 (RFC 6750)."""
    assert reload(make_app(OPEN)).status_code == 404
    app, _ = app_on_copies
    assert reload(app, None).status_code == 401
    assert reload(app, "guess").status_code == 401
    assert reload(app, ADMIN).status_code == 200


def test_reload_applies_a_change_with_an_audit_line(app_on_copies) -> None:  # type: ignore[no-untyped-def]
    """An edited plan takes effect on reload; the audit line names the new hash and what changed."""
    app, routing = app_on_copies
    assert call(app, ["5"]).connected.target == "queue women-sakura"  # type: ignore[union-attr]
    women_to_niji(routing)
    with capture_logs() as logs:
        resp = reload(app)
    body = resp.get_json()
    assert resp.status_code == 200 and body["result"] == "applied"
    assert body["changes"] == ["plan default.women changed"]
    audit = [e for e in logs if e["event"] == "config_applied"]
    assert len(audit) == 1 and audit[0]["hash"] == body["hash"] and audit[0]["changes"] == body["changes"]
    assert call(app, ["5"]).connected.target == "queue gender-niji"  # type: ignore[union-attr]
    assert reload(app).get_json()["result"] == "unchanged"
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'ivr_config_reloads_total{result="applied"} 1.0' in metrics
    assert 'ivr_config_reloads_total{result="unchanged"} 1.0' in metrics


def test_broken_reload_keeps_the_last_good_config(app_on_copies) -> None:  # type: ignore[no-untyped-def]
    """A reload of a broken file is refused with file and path; callers keep being routed as before."""
    app, routing = app_on_copies
    ready = app.test_client().get("/readyz", headers={"Authorization": f"Bearer {ADMIN}"}).get_json()
    before = ready["details"]["config"]["hash"]
    routing.write_text(routing.read_text(encoding="utf-8").replace("kind: phone", "kind: pigeon"), encoding="utf-8")
    with capture_logs() as logs:
        resp = reload(app)
    assert resp.status_code == 422
    assert resp.get_json() == {"result": "rejected", "hash": before,
                               "problems": [f"{routing}: partners[6].kind: Input should be 'queue' or 'phone'"]}
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["config_rejected"]
    assert call(app, ["6"]).connected.target == "phone +15005550006"  # type: ignore[union-attr]
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert "ivr_config_rejected 1.0" in metrics and 'ivr_config_reloads_total{result="rejected"} 1.0' in metrics
    routing.write_text("plans: [\n", encoding="utf-8")
    assert reload(app).get_json()["problems"][0].startswith(f"{routing}: line ")


def test_worker_started_on_broken_files_serves_the_last_good(make_app: AppFactory, tmp_path: Path) -> None:
    """A worker that starts while the files are broken (after SIGHUP) boots on the last good config."""
    menu, routing = copies(tmp_path)
    settings = {"IVR_MENU_FILE": str(menu), "IVR_ROUTING_FILE": str(routing),
                "IVR_RUNTIME_DIR": str(tmp_path / "runtime")}
    make_app(OPEN, **settings)
    routing.write_text("not: [valid\n", encoding="utf-8")
    request_reload(tmp_path / "runtime")  # what gunicorn's on_reload does on SIGHUP
    with capture_logs() as logs:
        app = make_app(OPEN, **settings)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["config_rejected"]
    assert call(app, ["2"]).connected.target == "queue under18-kodomo"  # type: ignore[union-attr]
    assert "ivr_config_rejected 1.0" in app.test_client().get("/metrics").get_data(as_text=True)


def test_first_boot_on_a_broken_file_fails_loudly(make_app: AppFactory, tmp_path: Path) -> None:
    """With no last good config, a broken file stops the boot with the file and the path."""
    _, routing = copies(tmp_path)
    routing.write_text(routing.read_text(encoding="utf-8").replace("status: confirmed", "status: maybe", 1),
                       encoding="utf-8")
    with pytest.raises(ConfigError, match=r"campaigns\[0\]\.status: Input should be 'confirmed', 'assumed' or "):
        make_app(OPEN, IVR_ROUTING_FILE=str(routing), IVR_RUNTIME_DIR=str(tmp_path / "runtime"))


def test_partner_contacts_come_from_the_partners_file(make_app: AppFactory, tmp_path: Path) -> None:
    """Production numbers live outside the repository and override the example ones by partner id."""
    secrets = tmp_path / "partners.yaml"
    secrets.write_text('partners:\n  hinata:\n    number: "+15005550009"\n', encoding="utf-8")
    app = make_app(OPEN, IVR_PARTNERS_FILE=str(secrets))
    assert call(app, ["6"]).connected.target == "phone +15005550009"  # type: ignore[union-attr]
    secrets.write_text('partners:\n  hinaata:\n    number: "0120"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        make_app(OPEN, IVR_PARTNERS_FILE=str(secrets))
    assert [str(p) for p in e.value.problems] == [
        f"{secrets}: partners.hinaata.number: String should match pattern '^\\+[1-9]\\d{{6,14}}$'"]


def test_shipped_partners_example_is_valid(make_app: AppFactory) -> None:
    """The example secrets file in ops/ loads against the shipped routing."""
    app = make_app(OPEN, IVR_PARTNERS_FILE=str(ROOT / "ops" / "partners.example.yaml"))
    assert call(app, ["1"]).connected.target == "queue general-tsunagari"  # type: ignore[union-attr]


def readyz(base: str) -> dict:  # type: ignore[type-arg]
    """The details /readyz gives the admin token: config files and hash, worker, store, clock."""
    import json

    req = urllib.request.Request(f"{base}/readyz", headers={"Authorization": f"Bearer {ADMIN}"})  # noqa: S310
    with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
        return json.loads(resp.read())["details"]  # type: ignore[no-any-return]


def wait_for_new_worker(base: str, *old_pids: int) -> dict:  # type: ignore[type-arg]
    """/readyz's details from a worker started after all of `old_pids` (a gevent worker told to stop still accepts
    for up to a second of its loop, so any earlier worker may answer meanwhile)."""
    for _ in range(300):
        try:
            ready = readyz(base)
            if ready["worker"] not in old_pids:
                return ready
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError("gunicorn did not restart its worker")


def test_sighup_under_gunicorn(redis_url: str, tmp_path: Path) -> None:
    """SIGHUP to gunicorn: a broken file leaves the last good config serving; a good one is taken by every worker."""
    menu, routing = copies(tmp_path)
    env = {"REDIS_URL": redis_url, "IVR_CLOCK": OPEN, "IVR_MENU_FILE": str(menu), "IVR_ROUTING_FILE": str(routing),
           "IVR_ADMIN_TOKEN": ADMIN}
    with running_server(tmp_path, env, workers=1) as (proc, base):

        def women() -> str | None:
            result = StandIn(OverHttp(), TOKEN, base, keys=["5"]).call()
            return result.connected.target if result.connected else None

        first = wait_for_new_worker(base, -1)
        assert women() == "queue women-sakura"
        routing.write_text(routing.read_text(encoding="utf-8").replace("kind: phone", "kind: fax"), encoding="utf-8")
        os.kill(proc.pid, signal.SIGHUP)
        second = wait_for_new_worker(base, first["worker"])
        assert second["config"]["hash"] == first["config"]["hash"]
        assert women() == "queue women-sakura"
        shutil.copyfile(ROOT / "routing" / "routing.yaml", routing)
        women_to_niji(routing)
        req = urllib.request.Request(f"{base}/admin/reload", method="POST",  # noqa: S310
                                     headers={"Authorization": f"Bearer {ADMIN}"})
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            assert resp.status == 200
        third = wait_for_new_worker(base, first["worker"], second["worker"])
        assert third["config"]["hash"] != first["config"]["hash"]
        assert women() == "queue gender-niji"
    events = (tmp_path / "server.log").read_text()
    assert events.count('"event":"config_rejected"') == 1
    assert events.count('"event":"config_applied"') == 1


def test_a_restarted_worker_serves_what_the_others_serve(make_app: AppFactory, tmp_path: Path) -> None:
    """A worker restarted without a reload (timeout, memory) ignores unreloaded edits until SIGHUP asks for them."""
    menu, routing = copies(tmp_path)
    settings = {"IVR_MENU_FILE": str(menu), "IVR_ROUTING_FILE": str(routing),
                "IVR_RUNTIME_DIR": str(tmp_path / "runtime")}
    make_app(OPEN, **settings)
    women_to_niji(routing)
    restarted = make_app(OPEN, **settings)
    assert call(restarted, ["5"]).connected.target == "queue women-sakura"  # type: ignore[union-attr]
    request_reload(tmp_path / "runtime")
    reloaded = make_app(OPEN, **settings)
    assert call(reloaded, ["5"]).connected.target == "queue gender-niji"  # type: ignore[union-attr]


def test_an_unchanged_reload_is_taken(make_app: AppFactory, tmp_path: Path) -> None:
    """After a SIGHUP with nothing changed, a later restart still does not pick up unreloaded edits."""
    menu, routing = copies(tmp_path)
    settings = {"IVR_MENU_FILE": str(menu), "IVR_ROUTING_FILE": str(routing),
                "IVR_RUNTIME_DIR": str(tmp_path / "runtime")}
    make_app(OPEN, **settings)
    request_reload(tmp_path / "runtime")
    make_app(OPEN, **settings)
    women_to_niji(routing)
    assert call(make_app(OPEN, **settings), ["5"]).connected.target == "queue women-sakura"  # type: ignore[union-attr]
