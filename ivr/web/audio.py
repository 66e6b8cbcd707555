"""The /audio/ route: recorded prompts and the hold sound served to Twilio with long caching (each URL changes with
its content)."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, abort, send_from_directory

from ivr.state.recordings import EXTENSIONS, HOLD_FILE, Recordings
from ivr.web.helpers import ext

CACHE_SECONDS = 7 * 24 * 3600  # recordings change rarely, and every change gets a new URL (?v=content hash)

bp = Blueprint("audio", __name__, url_prefix="/audio")


def _cached(folder: Path, name: str) -> Response:
    """A file of `folder`, public and cached for a week, answering conditional requests."""
    response = send_from_directory(folder, name, max_age=CACHE_SECONDS, conditional=True)
    response.cache_control.public = True
    return response


@bp.get("/<lang>/<name>")
def clip(lang: str, name: str) -> Response:
    """A recording, with long caching (its URL changes when it does). Not signed: Twilio fetches media plainly."""
    recordings: Recordings = ext("config").current.recordings
    if (lang, Path(name).stem) not in recordings or recordings.root is None or Path(name).suffix not in EXTENSIONS:
        abort(404)
    return _cached(recordings.root / lang, name)


@bp.get(f"/{HOLD_FILE}")
def hold() -> Response:
    """The hold sound callers hear while they wait, cached like the recordings. Not signed, like them."""
    recordings: Recordings = ext("config").current.recordings
    if recordings.hold_file is None or recordings.root is None:
        abort(404)
    return _cached(recordings.root, HOLD_FILE)


def init_app(app: Flask) -> None:
    """Serve the recordings and the hold sound at /audio/."""
    app.register_blueprint(bp)
