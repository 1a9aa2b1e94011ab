"""The engine never raises on odd but well-typed data: values changed, optional elements gone."""
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from storydata import hookdata_from_story

from cards.engine import evaluate, is_relevant
from cards.knowledge import load_knowledge
from fhir_fixtures import load_story, story_ids

K = load_knowledge()
STORIES = [load_story(s) for s in story_ids()]
ODD_NUMBERS = st.sampled_from([0, -1, 0.001, 1e9, 3, 2.5])
ODD_TEXT = st.sampled_from(["", "x", "mg", "{pill}", "h", "wk", "BID", "2026", "not-a-date", "Baclofen 0 MG"])


def paths(value, prefix=()):
    if isinstance(value, dict):
        for key, item in value.items():
            yield prefix + (key,)
            yield from paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, prefix + (index,))


def mutated(value, path, action, replacement):
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = dict(value) if isinstance(value, dict) else list(value)
    if rest:
        copy[head] = mutated(copy[head], rest, action, replacement)
    elif action == "delete" and isinstance(copy, dict):
        del copy[head]
    elif isinstance(copy[head], bool):
        pass
    elif isinstance(copy[head], (int, float)):
        copy[head] = replacement[0]
    elif isinstance(copy[head], str):
        copy[head] = replacement[1]
    return copy


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_stories_never_raise(data):
    story = data.draw(st.sampled_from(STORIES))
    part = data.draw(st.sampled_from(["drafts", "resources", "patient"]))
    target = story[part]
    # The resource type and id are what the service itself relies on: they stay.
    candidates = [p for p in paths(target) if p[-1] not in ("resourceType", "id")]
    if candidates:
        path = data.draw(st.sampled_from(candidates))
        action = data.draw(st.sampled_from(["delete", "replace"]))
        replacement = (data.draw(ODD_NUMBERS), data.draw(ODD_TEXT))
        story = {**story, part: mutated(target, path, action, replacement)}
    hook_data = hookdata_from_story(story)
    if data.draw(st.booleans()):
        hook_data = replace(hook_data, fhir_version="STU3", hook="medication-prescribe")
    is_relevant(hook_data.drafts, K, hook_data.medications)
    for card in evaluate(hook_data, K):
        assert len(card["summary"]) < 140
