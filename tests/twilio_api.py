"""Twilio's REST API as a validating mock: Prism serving Twilio's own description, twilio_api_v2010.json.

`make test-deps` installs Prism (tests/twilio_mock/package.json, locked) and unpacks the description from the npm
package `@twilio-alpha/mcp` (its `twilio-oai/spec/json/`). Prism answers a request that the description allows with the
description's example, and one it does not allow with 422; every request it saw, and every violation, is read back
from its log, so a test can assert that everything the service sent was valid."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response

from tests.support import free_port

HERE = Path(__file__).parent / "twilio_mock"
PRISM = HERE / "node_modules" / ".bin" / "prism"
SPEC = HERE / "spec" / "twilio_api_v2010.json"
ACCOUNT = "AC" + "a" * 32  # any well-formed SID: the mock keeps no accounts
EXAMPLE_CALLER = "+13051416799"  # the `from` of the description's example call: every call looked up has this number
RECEIVED = re.compile(r"\[HTTP SERVER\] (\w+) (\S+) .*Request received")
VIOLATION = re.compile(r"\[VALIDATOR\] ✖ +error +(.*)$")


class TwilioApi:
    """One Prism process on a free loopback port; `url` is the base to give the twilio client (`TWILIO_API_URL`)."""

    def __init__(self, workdir: Path):
        for need in (PRISM, SPEC):
            if not need.exists():
                pytest.fail(f"{need} is missing: `make test-deps` installs Prism and Twilio's API description")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prism.log"
        self._offset = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TwilioApi:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(PRISM), "mock", "-h", "127.0.0.1", "-p", str(self.port), str(SPEC)],
                                         stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while "Prism is listening" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prism did not start: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        self.mark()
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def mark(self) -> None:
        """Forget what Prism saw so far: `requests()` and `violations()` read from here on."""
        self._offset = len(self.log.read_bytes())

    def _since_mark(self) -> list[str]:
        time.sleep(0.05)  # Prism writes its log line just after answering
        return self.log.read_bytes()[self._offset:].decode(errors="replace").splitlines()

    def requests(self) -> list[tuple[str, str]]:
        """(METHOD, path) of every request Prism received since the mark."""
        return [(m[1].upper(), m[2]) for line in self._since_mark() if (m := RECEIVED.search(line))]

    def violations(self) -> list[str]:
        """Every way a request since the mark broke Twilio's description (empty when all were valid). Prism also checks
        its own answers against the description, whose examples break a few `format` rules; those are not ours."""
        found = [m[1] for line in self._since_mark() if (m := VIOLATION.search(line))]
        return [v for v in found if not v.startswith("Violation: response")]


class Sending(TwilioHttpClient):
    """twilio's own HTTP client, which also keeps what it sent (method, URL, form data): the mock checks each request
    against the description, and a test reads what a message said or to whom it went."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, url: str, params: Any = None, data: Any = None, headers: Any = None,
                auth: Any = None, timeout: Any = None, allow_redirects: bool = False) -> Response:
        """Send the request to the mock, as the client would, and note it."""
        self.sent.append((method, url, dict(data or {})))
        return super().request(method, url, params, data, headers, auth, timeout, allow_redirects)


@pytest.fixture(scope="session")
def twilio_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwilioApi]:
    """Prism serving Twilio's REST API description for the whole session; each test calls `mark()` first."""
    api = TwilioApi(tmp_path_factory.mktemp("prism")).start()
    yield api
    api.stop()
