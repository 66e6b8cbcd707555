"""Fixtures: a real redis-server started for the session, apps on a frozen clock.

Every test that uses one of the server fixtures is marked `redis` here, by fixture, so `pytest -m "not redis"`
(`make test-fast`) runs the tier that needs no server without anyone tagging a test by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from common.facts import parse_instant
from ivr.app import create_app
from ivr.clock import Clock
from tests.support import TOKEN, AppFactory, RedisServer
from tests.twilio_api import twilio_api  # noqa: F401  (the fixture, for every test module)

SERVER_FIXTURES = frozenset({"redis_server", "redis_url", "own_redis", "make_app"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `redis` every test that asks, directly or through another fixture, for a server fixture."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield redis_server.url
    client.flushall()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, which the test may stop."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def make_app(redis_url: str) -> AppFactory:
    """An app on real Redis whose clock stands still at `at` (JST unless the instant says otherwise)."""

    def factory(at: str = "2025-05-03T03:00:00+09:00", **overrides: object):  # type: ignore[no-untyped-def]
        settings: dict[str, object] = {"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": redis_url, "IVR_LOG_FORMAT": "json",
                                       "CLOCK": Clock(parse_instant(at), frozen=True)}
        settings.update(overrides)
        return create_app(settings)

    return factory
