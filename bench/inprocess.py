"""Server-side time of one hook call, in process: the WSGI app called directly, no network.

What it measures: request checks, prefetch reading and fhir.resources validation, the
rules, the cards, the JSON response, and (with the store) the audit insert. It is the
"server-side" figure of docs/performance.md; bench/load.py gives the served figures.

    .venv/bin/python bench/inprocess.py [--requests 5000]
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import STORY  # noqa: E402
from cards.knowledge import load_knowledge  # noqa: E402
from fhir_fixtures import load_story  # noqa: E402
from fhir_fixtures.requests import hook_request  # noqa: E402
from service import create_app  # noqa: E402
from service.declarations import prefetch_templates  # noqa: E402

PATH = "/cds-services/baclofen-order-sign"


def timed_calls(app, body: bytes, count: int) -> dict[str, list[float]]:
    """Calls alternately with and without the store, so both see the same machine."""
    environ = EnvironBuilder(path=PATH, method="POST", data=body,
                             content_type="application/json").get_environ()
    state = app.extensions["baclofen_cds"]
    store = state.store

    def start_response(status, headers):
        assert status.startswith("200"), status

    times = {"with_store": [], "without_store": []}
    for index in range(2 * count):
        variant = "with_store" if index % 2 == 0 else "without_store"
        state.store = store if variant == "with_store" else None
        call_environ = {**environ, "wsgi.input": io.BytesIO(body)}
        started = time.perf_counter()
        b"".join(app(call_environ, start_response))
        times[variant].append(time.perf_counter() - started)
    state.store = store
    return times


def summary(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 3),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    args = parser.parse_args()
    logging.getLogger("baclofen_cds").setLevel(logging.WARNING)  # the served app logs; not measured here
    story = load_story(STORY)
    body = json.dumps(hook_request(story, "order-sign", prefetch="complete",
                                   prefetch_templates=prefetch_templates(load_knowledge()))).encode()
    results = {"request_bytes": len(body)}
    with tempfile.TemporaryDirectory() as instance:
        app = create_app({"server": {"instance_path": instance}})
        timed_calls(app, body, 500)  # warm-up
        for variant, times in timed_calls(app, body, args.requests).items():
            results[variant] = summary(times)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
