"""What a clinician sees on a story's cards, checked against its `expect.cards`
(see fhir_fixtures/make_stories.py `story`): numbers in the summary, and each suggestion's
actions with the daily dose they write."""
from __future__ import annotations

from cards.dose import daily_dose
from cards.knowledge import load_knowledge
from cards.medication import read_order

KNOWLEDGE = load_knowledge()


def assert_cards_seen(story: dict, expect: dict, cards: list[dict]) -> None:
    by_topic = {card["source"]["topic"]["code"]: card for card in cards}
    for topic, seen in expect.get("cards", {}).items():
        card = by_topic[topic]
        for text in seen.get("summary", []):
            assert text in card["summary"], f"{story['id']}: {text!r} not in {card['summary']!r}"
        suggestions = card.get("suggestions", [])
        if "suggestions" in seen:
            got = [[describe(action) for action in suggestion["actions"]] for suggestion in suggestions]
            assert got == seen["suggestions"], f"{story['id']} {topic}: suggestions {got}"
        if "second_choice" in seen:
            got = [i for i, suggestion in enumerate(suggestions) if not suggestion.get("isRecommended")]
            assert got == seen["second_choice"], f"{story['id']} {topic}: not recommended {got}"


def describe(action: dict) -> str:
    """What a suggestion does, as a clinician reads it: 'delete', 'update 15 mg/day',
    'update taper 50 to 5 mg/day', 'create 2160-0'."""
    if action["type"] == "delete":
        return "delete"
    resource = action["resource"]
    if resource["resourceType"] == "MedicationRequest" and action["type"] == "update":
        steps = step_doses(resource)
        if len(steps) > 1:
            return f"update taper {steps[0]:g} to {steps[-1]:g} mg/day"
        return f"update {steps[0]:g} mg/day"
    concept = resource.get("code") or resource.get("medicationCodeableConcept") or {}
    codes = [coding["code"] for coding in concept.get("coding", [])]
    return f"{action['type']} {codes[0] if codes else concept.get('text')}"


def step_doses(request: dict) -> list[float]:
    """The daily dose of each step (sequence) of a MedicationRequest, in order."""
    strength = read_order(request, {}, KNOWLEDGE).strength
    sequences = sorted({i.get("sequence", 0) for i in request["dosageInstruction"]})
    return [daily_dose({"dosageInstruction": [i for i in request["dosageInstruction"]
                                              if i.get("sequence", 0) == sequence]}, strength, KNOWLEDGE)
            for sequence in sequences]
