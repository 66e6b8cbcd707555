"""The /audio/ route: recorded prompts served to Twilio with long caching (each URL changes with its content)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, abort, send_from_directory

from ivr.state.recordings import EXTENSIONS, Recordings
from ivr.web.helpers import ext

CACHE_SECONDS = 7 * 24 * 3600  # recordings change rarely, and every change gets a new URL (?v=content hash)

bp = Blueprint("audio", __name__, url_prefix="/audio")


@bp.get("/<lang>/<name>")
def clip(lang: str, name: str) -> Response:
    """A recording, with long caching (its URL changes when it does). Not signed: Twilio fetches media plainly."""
    recordings: Recordings = ext("config").current.recordings
    if (lang, Path(name).stem) not in recordings or recordings.root is None or Path(name).suffix not in EXTENSIONS:
        abort(404)
    response = send_from_directory(recordings.root / lang, name, max_age=CACHE_SECONDS, conditional=True)
    response.cache_control.public = True
    return response


def init_app(app: Flask) -> None:
    """Serve the recordings at /audio/."""
    app.register_blueprint(bp)
