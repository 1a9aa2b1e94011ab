"""Time of the clinical engine alone: facts, rules and cards for one hook call.

Each fixture story goes through the service's own request path (checks, prefetch,
validation) once to build its HookData; then `cards.engine.evaluate` is timed on it.

    .venv/bin/python bench/engine.py [--rounds 2000]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import STORY  # noqa: E402
from cards.engine import evaluate  # noqa: E402
from fhir_fixtures import all_stories  # noqa: E402
from fhir_fixtures.requests import hook_request  # noqa: E402
from service import create_app  # noqa: E402
from service.declarations import SERVICES_BY_ID  # noqa: E402
from service.gather import gather  # noqa: E402
from service.hooks import hook_data as build_hook_data, read_drafts  # noqa: E402
from service.request_checks import check_hook_call  # noqa: E402


def hook_data(state, story: dict):
    body = hook_request(story, "order-sign", prefetch="complete",
                        prefetch_templates=state.prefetch_templates)
    call = check_hook_call(body, SERVICES_BY_ID["baclofen-order-sign"], state.config.server)
    drafts, medications = read_drafts(call)
    gathered = gather(call, state.prefetch_templates, state.fhir)
    return build_hook_data(call, drafts, medications, gathered, {})


def per_call_ms(data, knowledge, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        evaluate(data, knowledge)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as instance:
        state = create_app({"server": {"instance_path": instance}}).extensions["baclofen_cds"]
    stories = {story["id"]: story for story in all_stories()}
    medians = {}
    for story_id, story in stories.items():
        data = hook_data(state, story)
        per_call_ms(data, state.knowledge, 50)  # warm-up
        medians[story_id] = statistics.median(per_call_ms(data, state.knowledge, args.rounds // 10))
    typical = per_call_ms(hook_data(state, stories[STORY]), state.knowledge, args.rounds)
    ordered = sorted(typical)
    print(json.dumps({
        "typical_story": STORY,
        "typical_p50_ms": round(statistics.median(ordered), 3),
        "typical_p99_ms": round(ordered[int(len(ordered) * 0.99)], 3),
        "all_stories_median_of_medians_ms": round(statistics.median(medians.values()), 3),
        "slowest_story": max(medians, key=medians.get),
        "slowest_story_p50_ms": round(max(medians.values()), 3),
        "stories": len(medians),
    }, indent=2))


if __name__ == "__main__":
    main()
