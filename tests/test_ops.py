"""Monitoring: the Prometheus config and alert rules pass promtool, the alert unit tests pass, and every dashboard and
alert query works against a real Prometheus scraping a real `ivr serve`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from ivr.tools.standin import OverHttp, StandIn
from tests.support import TOKEN, free_port, running_server
from tests.test_queue import capped_routing

OPS = Path(__file__).resolve().parent.parent / "ops"
DASHBOARD = OPS / "grafana" / "ivr-dashboard.json"
WAIT = 60.0  # seconds: the bound on every wait below
# What Grafana puts in for its built-in variables, so the panel queries can be run as Prometheus sees them.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "5m"}
SELECTOR = re.compile(r"\b((?:ivr_\w+|up)(?:\{[^}]*\})?)")
ALERTS = ["IvrTargetDown", "IvrWebhookErrorRateHigh", "IvrWebhooksRefusedAsForged", "IvrWebhooksForgedRepeatedly",
          "IvrWebhookLatencyP99High", "IvrDegradedMode",
          "IvrQueueWaitOverPartnerMax", "IvrAnswerRateLow", "IvrNoCallsWhileOpen", "IvrConfigRejected",
          "IvrSmsSendFailures", "IvrSmsHourlyCapReached", "IvrCounsellorLoginFailures", "IvrCounsellorLockedOut",
          "IvrEmergencyNumberRevealed", "IvrWaitingWithNobodyLoggedIn", "IvrLongestWaitOverPartnerMax"]


def tool(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        pytest.fail(f"{name} is not installed: `apt-get install -y prometheus` (make test does this)")
    return binary


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool("promtool"), *args], cwd=OPS, capture_output=True, text=True, timeout=60, check=False)


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((OPS / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, expression as Prometheus gets it) for every target of every panel."""
    doc = json.loads(DASHBOARD.read_text())
    out = []
    for panel in doc["panels"]:
        for t in panel["targets"]:
            expr = t["expr"]
            for var, value in GRAFANA_VARS.items():
                expr = expr.replace(var, value)
            out.append((panel["title"], expr))
    return out


def get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:  # Prometheus answers a bad query with 400 and a JSON error
        with e:
            return json.loads(e.read())


def query(prom: str, expr: str) -> dict[str, Any]:
    return get_json(f"{prom}/api/v1/query?{urllib.parse.urlencode({'query': expr})}")


def wait_for(what: str, check: Any, log: Path) -> Any:
    """Poll check() until it returns something truthy, for at most WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        try:
            got = check()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.25)
    pytest.fail(f"timed out after {WAIT:.0f} s waiting for {what}; Prometheus log:\n{log.read_text()[-3000:]}")


# -- static checks ------------------------------------------------------------------------------------------------


def test_prometheus_config_passes_promtool() -> None:
    """Prometheus would refuse to start (or reload) with ops/prometheus.yml and scrape nothing."""
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    doc = yaml.safe_load((OPS / "prometheus.yml").read_text())
    assert doc["rule_files"] == ["alerts.yml"]
    assert [(job["job_name"], job["metrics_path"]) for job in doc["scrape_configs"]] == [("ivr-web", "/metrics")]


def test_alert_rules_pass_promtool() -> None:
    """Prometheus would reject ops/alerts.yml and no alert would ever fire."""
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout
    assert [rule["alert"] for rule in alert_rules()] == ALERTS


def test_alert_unit_tests_pass() -> None:
    """An alert would fire when nothing is wrong, or stay silent when callers are being failed."""
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    """An alert could be changed so it never fires, or always fires, without any unit test noticing."""
    doc = yaml.safe_load((OPS / "alerts_test.yml").read_text())
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    assert sorted(fires) == sorted(ALERTS)
    assert sorted(quiet) == sorted(ALERTS)


def test_every_alert_says_how_bad_and_what_to_do() -> None:
    """A page would arrive without a severity, a summary, or a runbook section telling the on-call what to do."""
    runbook = (OPS / "runbook.md").read_text()
    for rule in alert_rules():
        name = rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), name
        assert sorted(rule["annotations"]) == ["description", "summary"], name
        assert f"Runbook: ops/runbook.md#{name.lower()}" in rule["annotations"]["description"], name
        assert f"\n### {name}\n" in runbook, name
        assert rule["for"] in ("0m", "1m", "2m", "5m", "10m"), name


def test_dashboard_is_provisioning_ready() -> None:
    """Grafana would not load the dashboard, or its panels would point at a data source that does not exist."""
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] == "ivr-hotline"
    assert doc["id"] is None
    assert [(v["name"], v["type"], v["query"]) for v in doc["templating"]["list"]] == [
        ("datasource", "datasource", "prometheus")]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for t in panel["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    prov = yaml.safe_load((OPS / "grafana" / "provisioning.yaml").read_text())
    assert prov["apiVersion"] == 1
    assert [(p["type"], sorted(p["options"])) for p in prov["providers"]] == [
        ("file", ["foldersFromFilesStructure", "path"])]


# -- against a real Prometheus ------------------------------------------------------------------------------------


@pytest.mark.redis
def test_dashboard_and_alert_queries_work_against_a_real_prometheus(tmp_path: Path, redis_url: str) -> None:
    """A dashboard panel would show "No data" or an error, or an alert would be broken, on the real metrics."""
    prometheus = tool("prometheus")
    env = {"REDIS_URL": redis_url, "IVR_CLOCK": "2025-05-03T03:00:00+09:00",  # inside the Golden Week 2025 window
           "IVR_ROUTING_FILE": capped_routing(tmp_path)}  # a partner with a cap, for the places panel
    prom_dir = tmp_path / "prometheus"
    prom_dir.mkdir()
    prom_log = prom_dir / "prometheus.log"
    prom_log.touch()
    with running_server(tmp_path, env, workers=2) as (_, base):
        target = urllib.parse.urlsplit(base).netloc
        config = yaml.safe_load((OPS / "prometheus.yml").read_text())
        config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
        config["rule_files"] = [str(OPS / "alerts.yml")]
        (job,) = config["scrape_configs"]
        job["static_configs"] = [{"targets": [target]}]
        (prom_dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        prom = f"http://127.0.0.1:{port}"
        with prom_log.open("wb") as log:
            proc = subprocess.Popen(
                [prometheus, f"--config.file={prom_dir / 'prometheus.yml'}", f"--storage.tsdb.path={prom_dir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for("the target to be up", lambda: [
                t for t in get_json(f"{prom}/api/v1/targets")["data"]["activeTargets"]
                if t["labels"]["instance"] == target and t["health"] == "up"], prom_log)

            calls = [StandIn(OverHttp(), TOKEN, base, keys=["1"]).call(),
                     StandIn(OverHttp(), TOKEN, base, keys=["2"]).call(),
                     StandIn(OverHttp(), TOKEN, base, keys=["1"], queue_result="hangup").call()]
            assert [c.app_error or c.fallback_used for c in calls] == [False, False, False]

            def scraped_calls() -> bool:
                result = query(prom, 'sum(ivr_calls_total{window="open"})')["data"]["result"]
                return bool(result) and result[0]["value"][1] == "3"

            wait_for("a scrape with the three calls", scraped_calls, prom_log)

            def rules_evaluated() -> list[dict[str, Any]]:
                groups = get_json(f"{prom}/api/v1/rules")["data"]["groups"]
                rules = [r for g in groups for r in g["rules"]]
                done = all(r["health"] == "ok" for r in rules) and get_json(f"{prom}/api/v1/alerts")["data"]["alerts"] == []
                return rules if done else []

            rules = wait_for("every rule evaluated, no alert pending", rules_evaluated, prom_log)
            assert sorted((r["name"], r["health"], r.get("lastError", "")) for r in rules) == sorted(
                (name, "ok", "") for name in ALERTS)

            # A caller waiting now at sakura: the live gauges say 1 (read once per scrape, not once per worker).
            client = redis.Redis.from_url(redis_url)
            waiting = "CA" + "f" * 32
            client.hset(f"ivr:call:{waiting}", "option", "women")
            client.zadd("ivr:waiting:women-sakura", {waiting: time.time() - 30})

            def live_waiting() -> bool:
                result = query(prom, 'sum(ivr_live_waiting_callers{partner="sakura", option="women"})')["data"]
                return bool(result["result"]) and result["result"][0]["value"][1] == "1"

            wait_for("the waiting caller in the live gauges", live_waiting, prom_log)

            problems: list[str] = []
            panels = dashboard_exprs()
            assert len(panels) == 36
            for title, expr in panels:
                answer = query(prom, expr)
                if answer["status"] != "success":
                    problems.append(f"panel {title!r}: {expr}: {answer.get('error')}")
                elif not answer["data"]["result"]:
                    problems.append(f"panel {title!r}: {expr}: no data")
            for rule in alert_rules():
                answer = query(prom, rule["expr"])
                if answer["status"] != "success":
                    problems.append(f"alert {rule['alert']}: {answer.get('error')}")
                selectors = SELECTOR.findall(rule["expr"])
                if not selectors:
                    problems.append(f"alert {rule['alert']}: no series found in its expression")
                for selector in selectors:
                    if not query(prom, selector)["data"]["result"]:
                        problems.append(f"alert {rule['alert']}: {selector}: no data")
            assert problems == []
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
