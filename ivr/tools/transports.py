"""How the stand-in reaches the app it rings: in this process (a Flask test client) or over HTTP to a running server."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Protocol


class Transport(Protocol):
    """How the stand-in reaches the app: in this process, or over HTTP to a running server."""

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
        """Send one signed webhook request; return its status, content type and body."""
        ...


class InProcess:
    """Requests go straight into a Flask app's test client."""

    def __init__(self, app: Any):
        self.client = app.test_client()

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
        """Hand one signed webhook request to the app; return its status, content type and body."""
        parts = urllib.parse.urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        resp = self.client.post(path, data=params, base_url=f"{parts.scheme}://{parts.netloc}",
                                headers={"X-Twilio-Signature": signature})
        return resp.status_code, resp.headers.get("Content-Type", ""), resp.get_data()


class OverHttp:
    """Requests go to a running server."""

    def __init__(self, timeout: float = 15.0):
        self.timeout = timeout  # Twilio gives a webhook 15 seconds

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
        """Send one signed webhook request to the server; a request that never got an answer comes back as 599."""
        req = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(), method="POST",  # noqa: S310
                                     headers={"X-Twilio-Signature": signature,
                                              "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()
        except (OSError, http.client.HTTPException) as e:  # refused, reset, timed out: Twilio sees a failed request
            return 599, "", str(e).encode()


class StaticDocument:
    """One fixed TwiML document answers every request, as a TwiML Bin or a static file would (the exported fallback
    document): the stand-in follows it like any answer; the status callback gets it too, and a 200 is all it needs."""

    def __init__(self, body: bytes, content_type: str = "text/xml"):
        self.body = body
        self.content_type = content_type
        self.urls: list[str] = []  # every URL requested, in order

    def post(self, url: str, params: dict[str, str], signature: str) -> tuple[int, str, bytes]:
        """The document, whatever was asked."""
        self.urls.append(url)
        return 200, self.content_type, self.body
