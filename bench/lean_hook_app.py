"""An experiment, not the product: the hook call with no Flask in front, to price the Flask
layer (request context, routing, CORS and security headers, error handlers). POST
/cds-services/<id> runs the same checks, rules, suppression, store and log line as the
service, but reads the WSGI environ itself and answers only the happy path; everything else
goes to the real app. bench/servers.py serves it as `lean-gevent-fair` and `lean-granian-1`.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service import hooks  # noqa: E402
from service.declarations import SERVICES_BY_ID  # noqa: E402
from service.request_checks import check_hook_call, check_json_limits  # noqa: E402
from service.wsgi import app as flask_app  # noqa: E402

PREFIX = "/cds-services/"
state = flask_app.extensions["baclofen_cds"]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    service = SERVICES_BY_ID.get(path[len(PREFIX):]) if path.startswith(PREFIX) else None
    if environ["REQUEST_METHOD"] != "POST" or service is None:
        return flask_app(environ, start_response)
    started = time.perf_counter()
    raw = environ["wsgi.input"].read()
    data = orjson.loads(raw)
    check_json_limits(data, state.config.server, raw)
    call = check_hook_call(data, service, state.config.server)
    drafts, medications = hooks.read_drafts(call)
    cards = hooks._record(call, hooks.answer(call, state, drafts, medications), drafts, medications, state)
    hooks.log.info("hook answered", extra={
        "event": "hook_answered", "hook_instance": call.hook_instance, "service": service.id,
        "status": 200, "cards": len(cards), "duration_ms": round((time.perf_counter() - started) * 1000, 2)})
    body = orjson.dumps({"cards": cards})
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
