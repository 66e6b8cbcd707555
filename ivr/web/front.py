"""The caller's webhooks served straight off WSGI: a signed, well-formed POST to one of the voice blueprint's URLs
runs its view without Flask's request machinery (request and app contexts, proxies, URL matching, hooks). Every
call reaches these URLs several times, and that machinery cost as much CPU as the step itself.

It does what ivr.web.guard does for Flask, through the same functions: the body limits, Twilio's signature over
the public URL and the form, the request served as a verified webhook (ivr.web.hook), the operators' reload, the
view, the safe answer when it fails, then the writes, latency and the one log line. Anything else goes on to
Flask untouched, the body put back as it was read: every other URL and method, a body that is not a url-encoded
form or has no Content-Length, one over the limits, no signature or a wrong one (Flask then answers 413 or 403
and counts it), a repeated field, a body that is not UTF-8.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from typing import Any, cast
from urllib.parse import unquote_plus

import structlog
from flask import Flask, Response
from werkzeug.wsgi import get_host

from ivr.web.guard import MAX_BODY, failed, finish, public_url, signed_by_twilio, too_many_fields
from ivr.web.helpers import base_url, twiml
from ivr.web.hook import Hook, begin, end
from ivr.web.live import reload_if_asked

log = structlog.get_logger("ivr.webhook")
View = Callable[[], Response]  # a voice view: every one answers a Response
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
FORM = "application/x-www-form-urlencoded"


class Fields(dict[str, str]):
    """A form's fields, each once. `getall` is the multi-value lookup twilio's RequestValidator asks a form for
    first (as on a werkzeug MultiDict); a plain dict would cost it two caught AttributeErrors a field."""

    def getall(self, name: str) -> list[str]:
        """Every value of the field: its one value."""
        return [self[name]]


def fields(raw: bytes) -> Fields | None:
    """A query string or url-encoded body, read as urllib's parse_qsl(keep_blank_values=True) reads it; None when a
    name repeats or it is not UTF-8. Split here rather than by parse_qsl, whose argument checks and two unquote
    calls a field cost about 20 us on a webhook's 25 fields: only a name or value holding '%' or '+' is decoded, by
    urllib's own unquote_plus (tests/test_signature.py holds the two to the same answers)."""
    try:
        text = raw.decode()
        found, parts = Fields(), 0
        for part in text.split("&"):
            if not part:
                continue
            name, _, value = part.partition("=")
            if "%" in name or "+" in name:
                name = unquote_plus(name, errors="strict")
            if "%" in value or "+" in value:
                value = unquote_plus(value, errors="strict")
            found[name] = value
            parts += 1
    except UnicodeError:
        return None
    return found if len(found) == parts else None


class Front:
    """WSGI middleware in front of the Flask app (inside ProxyFix, so the scheme, host and prefix are Twilio's)."""

    def __init__(self, app: Flask, inner: WSGIApp):
        self.inner = inner
        self.extensions = app.extensions
        self.url_map = app.url_map
        self.views: dict[str, tuple[str, View]] = {
            rule.rule: (rule.endpoint, cast(View, app.view_functions[rule.endpoint]))
            for rule in app.url_map.iter_rules()
            if rule.endpoint.startswith("voice.") and "POST" in (rule.methods or ()) and not rule.arguments}
        self._builders: dict[str, Callable[..., str]] = {}  # per SCRIPT_NAME

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        t0 = time.perf_counter()
        found = self.views.get(environ.get("PATH_INFO", ""))
        if found is None or environ.get("REQUEST_METHOD") != "POST":
            return self.inner(environ, start_response)
        try:
            served = self._verified(environ, found[0], t0)
        except Exception:  # whatever went wrong here, Flask's path answers it (the body is put back first)
            log.exception("front_handed_on", path=environ.get("PATH_INFO"))
            served = None
        if served is None:
            return self.inner(environ, start_response)
        try:
            try:
                begin(served)
                reload_if_asked(self.extensions)
                response = found[1]()
            except Exception as err:
                response = self._failed(err, served.endpoint, environ["PATH_INFO"])
            try:
                finish(served, response.status_code)
            except Exception:  # the caller still gets the answer
                log.exception("webhook_finish_failed", step=served.endpoint)
        finally:
            end()
        if response.status_code == 200 and isinstance(response.response, list):  # a TwiML document, whole
            start_response(response.status, response.headers.to_wsgi_list())
            return response.response
        return response(environ, start_response)

    def _failed(self, err: Exception, endpoint: str, path: str) -> Response:
        """The safe answer (guard.failed); the boot config's last words if even that fails (Flask's error
        handler gets a second try, as here)."""
        try:
            return failed(err, endpoint, path)
        except Exception:
            log.exception("fallback_failed")
            return twiml(self.extensions["ivr.flows"].boot().last_resort())

    def _verified(self, environ: dict[str, Any], endpoint: str, t0: float) -> Hook | None:
        """The request as a verified webhook; None to hand it on to Flask (its body put back)."""
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != FORM:
            return None
        signature = environ.get("HTTP_X_TWILIO_SIGNATURE")
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return None
        if not signature or not 0 <= length <= MAX_BODY:
            return None
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # for Flask, if it is handed on
        if len(body) != length or too_many_fields(body):
            return None
        query_string = environ.get("QUERY_STRING", "")
        try:
            query = fields(query_string.encode("latin-1")) if query_string else Fields()
        except UnicodeError:
            return None
        form = fields(body)
        if form is None or query is None:
            return None
        settings = self.extensions["ivr.settings"]
        root = environ.get("SCRIPT_NAME", "").encode("latin-1").decode(errors="replace")  # as Flask's root_path
        base = base_url(settings, environ["wsgi.url_scheme"], get_host(environ), root)
        if not signed_by_twilio(self.extensions["ivr.validator"], public_url(base, environ["PATH_INFO"], query_string),
                                form, signature):
            return None
        return Hook(self.extensions, {**form, **query}, self._builder(root), endpoint, t0, base)

    def _builder(self, root: str) -> Callable[..., str]:
        """url(endpoint, **query): the path Flask's url_for gives for the app's endpoint under prefix `root`. The
        same few are asked again and again (the first menu's action, each lane's wait URL), so each is built once:
        it depends only on the URL map."""
        found = self._builders.get(root)
        if found is not None:
            return found
        if len(self._builders) >= 16:  # one in practice: the prefix of the proxy in front
            self._builders.clear()
        paths = self.url_map.bind("localhost", script_name=root or "/")
        built: dict[tuple[Any, ...], str] = {}

        def url(endpoint: str, **query: Any) -> str:
            asked = (endpoint, *[(k, type(v), v) for k, v in query.items()])  # 1 and True name different URLs
            try:
                path = built.get(asked)
            except TypeError:  # a value that cannot be a key: built each time
                return paths.build(endpoint, query)
            if path is None:
                if len(built) >= 4096:
                    built.clear()
                path = built[asked] = paths.build(endpoint, query)
            return path

        self._builders[root] = url
        return url
