"""Referral lines by SMS: offered only for a caller whose number is present and not withheld, with Twilio's REST
API configured. The number is never passed on or kept: the job gets the CallSid and asks Twilio for it."""

from __future__ import annotations

from flask import current_app, g, request

from ivr.jobs import send_referral_sms
from ivr.privacy import withheld


def possible() -> bool:
    settings = current_app.extensions["ivr.settings"]
    if not (settings.account_sid and settings.sms_from and g.get("sid")):
        return False
    return not withheld(request.values.get("From") or "")


def send(body: str) -> bool:
    """Queue one SMS of `body` to this call's caller; False when it could not be queued."""
    queued = bool(current_app.extensions["ivr.store"].enqueue(send_referral_sms, {"call_sid": g.sid, "body": body}))
    current_app.extensions["ivr.metrics"].sms.labels("queued" if queued else "failed").inc()
    return queued
