"""Live figures at /metrics, read from Redis at scrape time: callers waiting per partner and option, the longest
wait, counsellors on the line, places in use, and the controls in force."""

from __future__ import annotations

import time
from typing import Any

import redis

from tests.support import AppFactory
from tests.test_counselor import app_with_counsellors, counsellor_call
from tests.test_live_controls import AUTH, instance, ops
from tests.test_queue import capped_routing, press

OPEN = "2025-05-03T03:00:00+09:00"


def metrics(app: Any) -> str:
    return str(app.test_client().get("/metrics").get_data(as_text=True))


def test_a_waiting_caller_a_place_and_a_pause_show_on_the_dashboard(make_app: AppFactory, tmp_path,  # type: ignore[no-untyped-def]
                                                                    redis_url: str) -> None:
    """The operators' room sees the caller waiting at sakura for the women's line, the place they hold, how long
    they have waited, and that an operator paused niji."""
    app, _ = instance(make_app, IVR_ROUTING_FILE=capped_routing(tmp_path, capacity=3))
    sid = "CA" + "a" * 32
    assert press(app, sid, "5") == "women-sakura"
    redis.Redis.from_url(redis_url).zadd("ivr:waiting:women-sakura", {sid: time.time() - 42})
    assert ops(app, "pause", target="niji", by="yamada").status_code == 200
    text = metrics(app)
    for sample in ('ivr_live_readable 1.0', 'ivr_live_waiting_callers{option="women",partner="sakura"} 1.0',
                   'ivr_live_waiting_callers{option="general",partner="sakura"} 0.0',
                   'ivr_live_places_in_use{partner="sakura"} 1.0', 'ivr_partner_capacity{partner="sakura"} 3.0',
                   'ivr_live_partner_paused{partner="niji"} 1.0', 'ivr_live_partner_paused{partner="sakura"} 0.0',
                   'ivr_live_option_closed{option="women"} 0.0', 'ivr_live_counsellors{partner="sakura"} 0.0'):
        assert sample in text, sample
    longest = next(line for line in text.splitlines() if line.startswith('ivr_live_longest_wait_seconds{partner="sakura"}'))
    assert 42 <= float(longest.split()[-1]) < 100
    status = app.test_client().get("/admin/ops/status", headers=AUTH).get_json()
    sakura = next(p for p in status["partners"] if p["partner"] == "sakura")
    assert (sakura["waiting"], sakura["places"], sakura["capacity"], sakura["paused"]) == (1, 1, 3, False)


def test_a_counsellor_on_the_line_counts_as_logged_in_and_taking_callers(make_app: AppFactory,
                                                                          redis_url: str) -> None:
    """A counsellor who logs in shows as logged in for their partner (never by id), and the caller they take counts
    for the answering rate the honest wait estimate uses."""
    app = app_with_counsellors(make_app)
    sid = "CA" + "b" * 32
    app.extensions["ivr.store"].record(sid, option="general", lang="ja")
    app.extensions["ivr.store"].joined("general-tsunagari", sid)
    counsellor_call(app, ["1001", "482193", "-"])
    assert 'ivr_live_counsellors{partner="tsunagari"} 1.0' in metrics(app)
    client = redis.Redis.from_url(redis_url)
    assert client.zcard("ivr:taken:tsunagari") == 1
    assert all(b"1001" not in m for m in client.zrange("ivr:online:tsunagari", 0, -1))


def test_with_redis_down_the_live_figures_say_so(make_app: AppFactory, own_redis) -> None:  # type: ignore[no-untyped-def]
    """Redis down: the scrape still answers, with the live figures marked unreadable rather than shown as zeros."""
    app, _ = instance(make_app, REDIS_URL=own_redis.url)
    own_redis.stop()
    text = metrics(app)
    assert "ivr_live_readable 0.0" in text
    assert "ivr_live_waiting_callers{" not in text
