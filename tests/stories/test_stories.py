"""Every fixture story through the HTTP API: each expected topic fires with its indicator,
each silent topic stays silent, on order-sign, order-select and medication-prescribe,
with a complete prefetch (no fhirServer at all) and with no prefetch (the service fetches
everything from the fixture FHIR server over real HTTP on loopback). Stories about a failed
FHIR query run once more with those queries failing (`expect_unavailable`).
"""
from __future__ import annotations

import pytest

from cards.knowledge import load_knowledge
from fhir_fixtures import load_story, story_ids
from fhir_fixtures.fhir_server import InMemoryFhir, create_fhir_app, simulated_failures
from fhir_fixtures.requests import HOOKS, hook_request
from service import create_app
from service.declarations import prefetch_templates
from tests.cds_spec import assert_valid_response
from tests.fhir_server_helpers import serve_wsgi
from tests.story_checks import assert_cards_seen

STORY_IDS = story_ids()
# (story, data): "complete" data for every story; "failing" also for stories about failed
# FHIR queries (their `unavailable` queries fail; `expect_unavailable` applies).
CASES = [(story_id, "complete") for story_id in STORY_IDS] + [
    (story_id, "failing") for story_id in STORY_IDS if load_story(story_id).get("unavailable")]
# The service gives up on the FHIR server after this; a simulated timeout takes longer.
FHIR_BUDGET_SECONDS = 1.5


@pytest.fixture(scope="module")
def stories():
    return {story_id: load_story(story_id) for story_id in STORY_IDS}


@pytest.fixture(scope="module")
def fixture_fhir(stories):
    return InMemoryFhir.from_stories(stories.values())


@pytest.fixture(scope="module")
def client(tmp_path_factory, healthy_fhir, failing_fhir):
    app = create_app({"server": {"instance_path": str(tmp_path_factory.mktemp("instance"))},
                      "fhir": {"total_timeout": FHIR_BUDGET_SECONDS,
                               "allowed_servers": [healthy_fhir.url, failing_fhir.url]},
                      "runahead": {"enabled": False}})  # each case fetches (tests/core/test_runahead.py)
    app.testing = True
    return app.test_client()


@pytest.fixture(scope="module")
def healthy_fhir(fixture_fhir):
    with serve_wsgi(create_fhir_app(fixture_fhir)) as served:
        yield served


@pytest.fixture(scope="module")
def failing_fhir(fixture_fhir, stories):
    """The same data, failing the queries the stories say are unavailable."""
    templates = prefetch_templates(load_knowledge())
    app = create_fhir_app(fixture_fhir, simulated_failures(stories.values(), templates),
                          timeout_seconds=FHIR_BUDGET_SECONDS * 2)
    with serve_wsgi(app) as served:
        yield served


@pytest.fixture(scope="module")
def services(client):
    """Hook -> the service's discovery entry (id and prefetch templates)."""
    response = client.get("/cds-services")
    assert response.status_code == 200
    return {service["hook"]: service for service in response.get_json()["services"]}


def test_there_are_stories():
    assert STORY_IDS, "fhir_fixtures/stories/ holds no story"


@pytest.mark.parametrize("prefetch", ["complete", "none"], ids=["prefetch", "fetch"])
@pytest.mark.parametrize("hook", HOOKS)
@pytest.mark.parametrize("story_id, data", CASES,
                         ids=[s if d == "complete" else f"{s}-failing" for s, d in CASES])
def test_story_cards(story_id, data, hook, prefetch, stories, fixture_fhir, healthy_fhir,
                     failing_fhir, client, services):
    story, service = stories[story_id], services[hook]
    failing, fetching = data == "failing", prefetch == "none"
    served_fhir = failing_fhir if failing else healthy_fhir
    # A complete prefetch needs no FHIR server, unless the EHR failed some of its queries.
    request = hook_request(story, hook, prefetch,
                           fhir_server=served_fhir.url if fetching or failing else None,
                           prefetch_templates=service["prefetch"], fhir=fixture_fhir,
                           failing=failing)
    served_fhir.clear_log()

    response = client.post(f"/cds-services/{service['id']}", json=request)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert_valid_response(response.get_json())
    cards = response.get_json()["cards"]
    expect = story["expect_unavailable"] if failing else story["expect"]
    assert_expectations(story, expect, cards)
    assert_cards_seen(story, {"cards": expect.get("cards_by_hook", {}).get(hook, {})}, cards)
    if fetching and expect.get("fires"):
        assert_fetched_from_fixture_server(story, served_fhir.requests)


def assert_expectations(story: dict, expect: dict, cards: list[dict]) -> None:
    fired = {card["source"]["topic"]["code"]: card["indicator"]
             for card in cards if "topic" in card.get("source", {})}
    expected = expect.get("fires", {})
    wrong = {topic: fired.get(topic, "silent") for topic, indicator in expected.items()
             if fired.get(topic) != indicator}
    loud = sorted(topic for topic in expect.get("silent", []) if topic in fired)
    assert not wrong and not loud, (
        f"{story['id']} ({story['title']}): expected {expected}, got {fired}; "
        f"wrong or missing: {wrong}; should be silent: {loud}")
    assert_cards_seen(story, expect, cards)


def assert_fetched_from_fixture_server(story: dict, log) -> None:
    """The service really asked the FHIR server about this patient (and nobody else)."""
    patient_id = story["patient"]["id"]
    assert any(entry.path.endswith(f"/Patient/{patient_id}") for entry in log), log
    searched = [entry.query for entry in log if "patient=" in entry.query]
    assert searched and all(patient_id in query for query in searched), searched
