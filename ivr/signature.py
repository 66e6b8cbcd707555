"""The X-Twilio-Signature check: twilio's RequestValidator, doing only the work a request needs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from twilio.request_validator import HMAC_SHA1, RequestValidator, add_port, compare, remove_port
from werkzeug.datastructures import MultiDict


class Validator(RequestValidator):
    """Same answers as RequestValidator.validate: valid when the URL without its port, or with it, signs the form.

    twilio computes both signatures on every request (two HMACs, two sorted passes over the form, each value looked
    up through a failed `getall`): a tenth of a webhook's CPU. Here the URL as it was requested (with its port, or
    without one) is tried first, and the other form only when that fails."""

    def validate(self, uri: str, params: Any, signature: str, algorithm: str | None = None) -> bool:
        parsed = urlparse(uri)
        if isinstance(params, str) or "bodySHA256" in parsed.query or (algorithm or HMAC_SHA1).upper() != HMAC_SHA1:
            return bool(super().validate(uri, params, signature, algorithm))  # JSON bodies, other algorithms
        params = params or {}
        first, second = (add_port, remove_port) if parsed.port else (remove_port, add_port)  # the URL as asked first
        if compare(self.compute_signature(first(parsed), params), signature):
            return True
        return bool(compare(self.compute_signature(second(parsed), params), signature))

    def get_values(self, param_dict: Any, param_name: str) -> Any:
        if isinstance(param_dict, MultiDict):  # Flask's request.form
            return param_dict.getlist(param_name)
        return super().get_values(param_dict, param_name)
