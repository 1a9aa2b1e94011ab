"""Server-side time of one hook call, in process: the WSGI app called directly, no network.

What it measures: request checks, prefetch reading and validation, the rules, the cards,
the JSON response, the log line (written to /dev/null: formatted as when served, not
printed) and (with the store) the suppression read and the queued card record. It is the
"server-side" figure of docs/performance.md; bench/load.py gives the served figures.
`engine` is the clinical engine alone (is_relevant and evaluate on the same call's data),
timed between the calls: a call's time outside the engine is the call minus it.

    .venv/bin/python bench/inprocess.py [--requests 5000]
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import STORY  # noqa: E402
from cards import engine  # noqa: E402
from cards.knowledge import load_knowledge  # noqa: E402
from fhir_fixtures import load_story  # noqa: E402
from fhir_fixtures.requests import hook_request  # noqa: E402
from service import create_app, hooks, logs  # noqa: E402
from service.declarations import SERVICES_BY_ID, prefetch_templates  # noqa: E402
from service.gather import gather  # noqa: E402
from service.logs import LOGGER_NAME  # noqa: E402
from service.request_checks import check_hook_call  # noqa: E402

PATH = "/cds-services/baclofen-order-sign"


def timed_calls(app, body: bytes, count: int) -> dict[str, list[float]]:
    """Calls alternately with and without the store, so both see the same machine."""
    environ = EnvironBuilder(path=PATH, method="POST", data=body,
                             content_type="application/json").get_environ()
    state = app.extensions["baclofen_cds"]
    store = state.store

    def start_response(status, headers):
        assert status.startswith("200"), status

    engine_alone = engine_call(state, body)
    times = {"with_store": [], "without_store": [], "engine": []}
    for index in range(2 * count):
        variant = "with_store" if index % 2 == 0 else "without_store"
        state.store = store if variant == "with_store" else None
        call_environ = {**environ, "wsgi.input": io.BytesIO(body)}
        started = time.perf_counter()
        b"".join(app(call_environ, start_response))
        times[variant].append(time.perf_counter() - started)
        if index % 2:
            started = time.perf_counter()
            engine_alone()
            times["engine"].append(time.perf_counter() - started)
    state.store = store
    return times


def engine_call(state, body: bytes):
    """The engine's part of one call (what hooks.answer asks of cards.engine), on its data."""
    call = check_hook_call(json.loads(body), SERVICES_BY_ID[PATH.rsplit("/", 1)[1]], state.config.server)
    drafts, medications = hooks.read_drafts(call)
    gathered = gather(call, state.prefetch_templates, state.fhir)
    data = hooks.hook_data(call, drafts, medications, gathered, dict(gathered.unavailable))

    def run():
        engine.is_relevant(drafts, state.knowledge, medications)
        engine.evaluate(data, state.knowledge)
    return run


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    story = load_story(STORY)
    body = json.dumps(hook_request(story, "order-sign", prefetch="complete",
                                   prefetch_templates=prefetch_templates(load_knowledge()))).encode()
    results = {"request_bytes": len(body)}
    with tempfile.TemporaryDirectory() as instance, open(os.devnull, "w") as nowhere:
        logs.configure()  # the app's handler, now, so that its lines go nowhere from the start
        for handler in logging.getLogger(LOGGER_NAME).handlers:
            handler.setStream(nowhere)
        measure(create_app({"server": {"instance_path": instance}}), body, args.requests, results)
    print(json.dumps(results, indent=2))


def measure(app, body: bytes, count: int, results: dict) -> None:
    timed_calls(app, body, 500)  # warm-up
    for variant, times in timed_calls(app, body, count).items():
        results[variant] = summary(times)


if __name__ == "__main__":
    main()
