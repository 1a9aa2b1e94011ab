"""The engine's answer to every fixture story on every hook, as the service hands it over.

Each story (order stories and patient-view stories) goes through the service's request path
(checks, complete prefetch, validation) on order-sign, order-select, medication-prescribe
and patient-view, with complete data and, for stories about failed queries, with those
queries failing. Dates are fixed so the answers are comparable between runs and commits;
card and suggestion uuids are replaced by a placeholder.

    .venv/bin/python -m tests.cards.engine_answers > answers.json   # dump, to diff two commits
    .venv/bin/python -m tests.cards.engine_answers --update  # after a deliberate change of answers

tests/data/engine_answers.json keeps a digest of each answer (test_engine_answers.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import tempfile
from datetime import date, datetime, time, timezone
from pathlib import Path

from cards.engine import evaluate, is_relevant
from fhir_fixtures import PATIENT_VIEW_STORIES, all_stories
from fhir_fixtures.requests import HOOKS, PATIENT_VIEW, hook_request
from service import create_app
from service.declarations import SERVICES_BY_ID
from service.gather import gather
from service.hooks import hook_data, read_drafts
from service.request_checks import check_hook_call

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "engine_answers.json"
TODAY = date(2026, 3, 15)
NOW = datetime.combine(TODAY, time(12, 0), timezone.utc)
SERVICE_OF_HOOK = {service.hook: service for service in SERVICES_BY_ID.values()}


def all_answers() -> dict[str, dict]:
    """'<story>/<hook>/<complete|failing>' -> {"relevant": ..., "cards": [...]}."""
    return {key: answer(*case) for key, case in all_cases().items()}


def all_cases() -> dict[str, tuple]:
    """'<story>/<hook>/<complete|failing>' -> (is_relevant's answer, HookData, knowledge)."""
    with tempfile.TemporaryDirectory() as instance:
        state = create_app({"server": {"instance_path": instance}}).extensions["baclofen_cds"]
    stories = all_stories(TODAY) + all_stories(TODAY, folder=PATIENT_VIEW_STORIES)
    cases = {}
    for story in stories:
        for failing in (False, True) if story.get("unavailable") else (False,):
            for hook in (*HOOKS, PATIENT_VIEW):
                key = f"{story['id']}/{hook}/{'failing' if failing else 'complete'}"
                cases[key] = case(state, story, hook, failing)
    return cases


def case(state, story: dict, hook: str, failing: bool) -> tuple:
    service = SERVICE_OF_HOOK[hook]
    body = hook_request(story, hook, prefetch="complete", prefetch_templates=state.prefetch_templates)
    call = check_hook_call(body, service, state.config.server)
    drafts, medications = read_drafts(call)
    relevant = is_relevant(drafts, state.knowledge, medications) if service.drafts_field else None
    gathered = gather(call, state.prefetch_templates, state.fhir)
    if failing:
        fail(gathered, story["unavailable"])
    data = hook_data(call, drafts, medications, gathered, dict(gathered.unavailable))
    return relevant, dataclasses.replace(data, now=NOW), state.knowledge


def answer(relevant: bool | None, data, knowledge) -> dict:
    return {"relevant": relevant, "cards": without_uuids(evaluate(data, knowledge))}


def fail(gathered, unavailable: dict[str, str]) -> None:
    """The story's failed queries, as the service hands them over: no data, and why."""
    for key, reason in unavailable.items():
        gathered.resources.pop(key, None)
        gathered.unavailable[key] = reason


def without_uuids(value):
    if isinstance(value, dict):
        return {key: "<uuid>" if key == "uuid" else without_uuids(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_uuids(item) for item in value]
    return value


def digest(answer: dict) -> str:
    text = json.dumps(answer, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def digests(answers: dict[str, dict]) -> dict[str, str]:
    return {key: digest(value) for key, value in answers.items()}


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        GOLDEN.write_text(json.dumps(digests(all_answers()), indent=1, sort_keys=True) + "\n")
    else:
        json.dump(all_answers(), sys.stdout, indent=1, sort_keys=True, ensure_ascii=False)
