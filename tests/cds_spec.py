"""A checker of CDS Hooks 2.0 responses, strict where the spec is: used by every HTTP test."""
from __future__ import annotations

import uuid

INDICATORS = {"info", "warning", "critical"}
ACTION_TYPES = {"create", "update", "delete"}
SELECTION_BEHAVIORS = {"at-most-one", "any"}
LINK_TYPES = {"absolute", "smart"}


def assert_valid_response(body: dict) -> None:
    assert isinstance(body, dict) and set(body) <= {"cards", "systemActions"}, body
    assert isinstance(body["cards"], list)
    if "systemActions" in body:
        assert_no_empty_values(body["systemActions"], "$.systemActions")
    for card in body["cards"]:
        assert_valid_card(card)


def assert_valid_card(card: dict) -> None:
    assert_no_empty_values(card)
    uuid.UUID(card["uuid"])
    assert isinstance(card["summary"], str) and len(card["summary"]) < 140, card["summary"]
    assert card["indicator"] in INDICATORS
    assert isinstance(card["source"]["label"], str)
    if "topic" in card["source"]:
        _assert_coding(card["source"]["topic"])
    if "detail" in card:
        assert isinstance(card["detail"], str)
    suggestions = card.get("suggestions", [])
    if suggestions:
        assert card["selectionBehavior"] in SELECTION_BEHAVIORS
    for suggestion in suggestions:
        uuid.UUID(suggestion["uuid"])
        assert isinstance(suggestion["label"], str)
        for action in suggestion.get("actions", []):
            _assert_action(action)
    for reason in card.get("overrideReasons", []):
        _assert_coding(reason)
        assert isinstance(reason["display"], str)
    for link in card.get("links", []):
        assert isinstance(link["label"], str) and isinstance(link["url"], str)
        assert link["type"] in LINK_TYPES


def _assert_action(action: dict) -> None:
    assert action["type"] in ACTION_TYPES
    assert isinstance(action["description"], str)
    if action["type"] in ("create", "update"):
        assert isinstance(action["resource"], dict) and action["resource"]["resourceType"]
    else:
        assert isinstance(action["resourceId"], str) and "/" in action["resourceId"]


def _assert_coding(coding: dict) -> None:
    assert isinstance(coding["system"], str) and isinstance(coding["code"], str), coding


def assert_no_empty_values(value, path: str = "$") -> None:
    """The spec forbids null, "", [] and {} anywhere (the one exception is cards: [])."""
    assert value is not None and value != "" and value != [] and value != {}, f"empty value at {path}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert_no_empty_values(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert_no_empty_values(item, f"{path}[{index}]")


def topics(body: dict) -> dict[str, str]:
    """topic code -> indicator of each card in a response."""
    return {card["source"]["topic"]["code"]: card["indicator"] for card in body["cards"]}
