"""Time of the clinical engine alone: facts, rules and cards for one hook call.

Each fixture story goes through the service's own request path (checks, prefetch,
validation) once to build its HookData; then the engine's work for one call is timed on it:
`cards.engine.is_relevant` on the drafts, then `cards.engine.evaluate`.

    .venv/bin/python bench/engine.py [--rounds 2000] [--baseline REV]

`--baseline REV` also times the engine of another commit (its cards/, loaded beside this
one), alternating call by call so both see the same machine, and reports the ratio.
"busy chart" is the typical story for a patient with 30 active orders of other drugs and 15
other active problems, as real charts have (the fixture stories carry only what the rules
look at).
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import STORY  # noqa: E402
from cards import engine  # noqa: E402
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


OTHER_DRUGS = (("860975", "Metformin 500 MG Oral Tablet"), ("314076", "Lisinopril 10 MG Oral Tablet"),
               ("617312", "Atorvastatin 20 MG Oral Tablet"), ("198211", "Simvastatin 40 MG Oral Tablet"),
               ("310798", "Hydrochlorothiazide 25 MG Oral Tablet"))


OTHER_PROBLEMS = (("38341003", "I10", "Essential hypertension"), ("44054006", "E11.9", "Type 2 diabetes"),
                  ("55822004", "E78.5", "Hyperlipidemia"), ("195967001", "J45.909", "Asthma"),
                  ("235595009", "K21.9", "Gastroesophageal reflux disease"))


def busy_chart(story: dict, count: int = 30) -> dict:
    """The story with `count` active MedicationRequests of other drugs and half as many
    active Conditions of other problems added."""
    drug_orders = [{
        "resourceType": "MedicationRequest", "id": f"{story['id']}-other-{index}", "status": "active",
        "intent": "order", "subject": {"reference": f"Patient/{story['patient']['id']}"},
        "authoredOn": story["drafts"][0].get("authoredOn"),
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "code": code, "display": name}], "text": name},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "{tbl}"}}]}],
    } for index, (code, name) in enumerate(OTHER_DRUGS * (count // len(OTHER_DRUGS)))]
    problems = [{
        "resourceType": "Condition", "id": f"{story['id']}-problem-{index}",
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "subject": {"reference": f"Patient/{story['patient']['id']}"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": snomed, "display": name},
                            {"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd10, "display": name}],
                 "text": name},
    } for index, (snomed, icd10, name) in enumerate(OTHER_PROBLEMS * (count // 2 // len(OTHER_PROBLEMS)))]
    return {**story, "resources": story["resources"] + drug_orders + problems}


def baseline_engine(revision: str, workdir: Path) -> SimpleNamespace:
    """The engine and knowledge of `revision`, imported as the package `baseline_cards`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "cards"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(workdir, filter="data")
    package = workdir / "cards"
    spec = importlib.util.spec_from_file_location(
        "baseline_cards", package / "__init__.py", submodule_search_locations=[str(package)])
    sys.modules["baseline_cards"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules["baseline_cards"])
    knowledge = importlib.import_module("baseline_cards.knowledge").load_knowledge()
    return SimpleNamespace(engine=importlib.import_module("baseline_cards.engine"), knowledge=knowledge)


def one_call(candidate, data) -> float:
    """ms for the engine's part of one hook call."""
    started = time.perf_counter()
    if candidate.engine.is_relevant(data.drafts, candidate.knowledge, data.medications):
        candidate.engine.evaluate(data, candidate.knowledge)
    return (time.perf_counter() - started) * 1000


def per_call_ms(candidates: dict, data, rounds: int) -> dict[str, list[float]]:
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, candidate in candidates.items():
            times[name].append(one_call(candidate, data))
    return times


def figures(candidates: dict, stories: dict, state, rounds: int) -> dict:
    medians = {name: {} for name in candidates}
    for story_id, story in stories.items():
        data = hook_data(state, story)
        per_call_ms(candidates, data, 50)  # warm-up
        for name, times in per_call_ms(candidates, data, max(rounds // 10, 1)).items():
            medians[name][story_id] = statistics.median(times)
    typical = per_call_ms(candidates, hook_data(state, stories[STORY]), rounds)
    busy = per_call_ms(candidates, hook_data(state, busy_chart(stories[STORY])), max(rounds // 10, 1))
    return {name: summary(typical[name], busy[name], medians[name]) for name in candidates}


def summary(typical: list[float], busy: list[float], medians: dict[str, float]) -> dict:
    ordered = sorted(typical)
    slowest = max(medians, key=medians.get)
    return {
        "typical_p50_ms": round(statistics.median(ordered), 3),
        "typical_p99_ms": round(ordered[int(len(ordered) * 0.99)], 3),
        "typical_busy_chart_p50_ms": round(statistics.median(busy), 3),
        "all_stories_median_of_medians_ms": round(statistics.median(medians.values()), 3),
        "slowest_story": slowest,
        "slowest_story_p50_ms": round(medians[slowest], 3),
        "stories_p50_ms": {story: round(ms, 3) for story, ms in medians.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--baseline", metavar="REV", help="also time the engine of this commit")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as instance:
        state = create_app({"server": {"instance_path": instance}}).extensions["baclofen_cds"]
    candidates = {"current": SimpleNamespace(engine=engine, knowledge=state.knowledge)}
    stories = {story["id"]: story for story in all_stories()}
    with tempfile.TemporaryDirectory() as workdir:
        if args.baseline:
            candidates["baseline"] = baseline_engine(args.baseline, Path(workdir))
        results = figures(candidates, stories, state, args.rounds)
    report = {"typical_story": STORY, "stories": len(stories), **results}
    if args.baseline:
        report["speed-up"] = speed_up(results["baseline"], results["current"])
    for result in results.values():
        del result["stories_p50_ms"]
    print(json.dumps(report, indent=2))


def speed_up(baseline: dict, current: dict) -> dict:
    """baseline / current time, for the typical story, the slowest baseline story, and overall."""
    slowest = baseline["slowest_story"]
    ratios = [baseline["stories_p50_ms"][s] / current["stories_p50_ms"][s] for s in baseline["stories_p50_ms"]]
    return {
        "typical_p50": round(baseline["typical_p50_ms"] / current["typical_p50_ms"], 2),
        "typical_busy_chart_p50": round(baseline["typical_busy_chart_p50_ms"]
                                        / current["typical_busy_chart_p50_ms"], 2),
        f"slowest_baseline_story ({slowest})": round(
            baseline["stories_p50_ms"][slowest] / current["stories_p50_ms"][slowest], 2),
        "median_over_stories": round(statistics.median(ratios), 2),
        "lowest_over_stories": round(min(ratios), 2),
    }


if __name__ == "__main__":
    main()
