"""The stack's limit: a bare Flask app answering a fixed string, served by gunicorn with `ivr serve`'s own settings.

    WEB_CONCURRENCY=4 IVR_BIND=127.0.0.1:8001 python -m gunicorn -c ivr/gunicorn_conf.py --pythonpath bench bare:app

bench/run-all.sh loads it with the same wrk commands and signed request tables as the service, so the ratio of the
two throughputs is what the service's own work (signature check, state, metrics, logs, TwiML) costs.
"""

from flask import Flask, Response

BODY = '<?xml version="1.0" encoding="UTF-8"?><Response><Say>bare</Say></Response>'

app = Flask("bare")


@app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
@app.route("/<path:path>", methods=["GET", "POST"])
def answer(path: str) -> Response:
    return Response(BODY, mimetype="text/xml")
