"""POST /cds-services/{id}/feedback: what the clinician did with each card, kept for the
override report. All items of a request are stored, or none (one transaction)."""
from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import Blueprint, jsonify, request

from . import metrics
from .declarations import SERVICES_BY_ID
from .errors import ApiError, bad_request
from .logs import get_logger
from .request_checks import is_storable_text, read_json_body
from .state import app_state
from .store import FeedbackItem

blueprint = Blueprint("feedback", __name__)
log = get_logger()

OUTCOMES = ("accepted", "overridden")
# Card and suggestion ids are UUIDs in CDS Hooks; accept any short opaque token so that a
# client's "urn:uuid:..." or upper-case form is not refused.
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_CODE_LENGTH = 128
MAX_TEXT_LENGTH = 256


@blueprint.post("/cds-services/<service_id>/feedback")
def receive_feedback(service_id: str):
    state = app_state()
    if service_id not in SERVICES_BY_ID:
        raise ApiError(404, f"no CDS service with id {service_id!r}")
    body = read_json_body(request, state.config.server)
    items = parse_feedback(body)
    stored = state.store.record_feedback(service_id, items)
    metrics.count_feedback(service_id, stored.new_items)  # a client's retry counts once
    log.info("feedback stored", extra={
        "event": "feedback_stored", "service": service_id, "feedback_items": len(stored.new_items)})
    if stored.unknown:
        log.warning("feedback for unknown cards", extra={
            "event": "feedback_unknown_card", "service": service_id, "feedback_items": stored.unknown})
    return jsonify({})


def parse_feedback(body: object) -> list[FeedbackItem]:
    """The validated items; the first problem raises a 400 naming the field."""
    if not isinstance(body, dict):
        raise bad_request("body", "must be a JSON object with a feedback array")
    entries = body.get("feedback")
    if not isinstance(entries, list) or not entries:
        raise bad_request("feedback", "must be a non-empty array")
    return [_parse_item(entry, f"feedback[{index}]") for index, entry in enumerate(entries)]


def _parse_item(entry: object, where: str) -> FeedbackItem:
    if not isinstance(entry, dict):
        raise bad_request(where, "must be an object")
    outcome = entry.get("outcome")
    if outcome not in OUTCOMES:
        raise bad_request(f"{where}.outcome", "must be accepted or overridden")
    reason = _override_reason(entry, outcome, f"{where}.overrideReason")
    return FeedbackItem(
        card=_identifier(entry.get("card"), f"{where}.card"),
        outcome=outcome,
        outcome_at=_timestamp(entry.get("outcomeTimestamp"), f"{where}.outcomeTimestamp"),
        accepted_suggestions=_accepted_suggestions(entry, outcome, f"{where}.acceptedSuggestions"),
        **reason,
    )


def _identifier(value: object, where: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise bad_request(where, "must be the card's uuid")
    return value.removeprefix("urn:uuid:")


def _timestamp(value: object, where: str) -> datetime:
    """RFC 3339: a date, a time and a UTC offset ("Z" or +hh:mm)."""
    moment = None
    if isinstance(value, str) and len(value) > 10 and value[10] in "Tt ":
        try:
            moment = datetime.fromisoformat(value.replace("z", "Z"))
        except ValueError:
            moment = None
    if moment is None or moment.tzinfo is None:
        raise bad_request(where, "must be an RFC 3339 date-time with a time zone, "
                                 "e.g. 2026-11-21T22:33:41Z")
    return in_utc(moment, where)


def in_utc(moment: datetime, where: str) -> datetime:
    """The moment in UTC; 400 when that lies outside years 1-9999 (e.g. 9999-12-31T23:59:59-14:00)."""
    try:
        return moment.astimezone(timezone.utc)
    except OverflowError:
        raise bad_request(where, "is outside the years 1-9999 in UTC") from None


def _accepted_suggestions(entry: dict, outcome: str, where: str) -> tuple[str, ...]:
    suggestions = entry.get("acceptedSuggestions")
    if suggestions is None:
        return ()
    if outcome != "accepted":
        raise bad_request(where, "only allowed when outcome is accepted")
    if not isinstance(suggestions, list):
        raise bad_request(where, "must be an array of {id}")
    return tuple(_suggestion_id(item, f"{where}[{index}]") for index, item in enumerate(suggestions))


def _suggestion_id(item: object, where: str) -> str:
    if not isinstance(item, dict):
        raise bad_request(where, "must be an object with an id")
    return _identifier(item.get("id"), f"{where}.id")


def _override_reason(entry: dict, outcome: str, where: str) -> dict:
    """The reason Coding (display optional: the Sandbox omits it) and whether the user
    wrote a comment. The comment itself is not kept: free text may name the patient."""
    override = entry.get("overrideReason")
    if override is None:
        return {}
    if outcome != "overridden":
        raise bad_request(where, "only allowed when outcome is overridden")
    if not isinstance(override, dict):
        raise bad_request(where, "must be an object with reason and/or userComment")
    comment = override.get("userComment")
    if comment is not None and not isinstance(comment, str):
        raise bad_request(f"{where}.userComment", "must be a string")
    return {**_coding(override.get("reason"), f"{where}.reason"),
            "has_user_comment": bool(comment and comment.strip())}


def _coding(coding: object, where: str) -> dict:
    if coding is None:
        return {}
    if not isinstance(coding, dict):
        raise bad_request(where, "must be a Coding with system and code")
    fields = {"reason_system": ("system", MAX_TEXT_LENGTH), "reason_code": ("code", MAX_CODE_LENGTH),
              "reason_display": ("display", MAX_TEXT_LENGTH)}
    values = {}
    for target, (name, limit) in fields.items():
        value = coding.get(name)
        required = name != "display"
        if value is None and not required:
            continue
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            raise bad_request(f"{where}.{name}", f"must be a non-empty string of at most {limit} characters")
        if not is_storable_text(value):
            raise bad_request(f"{where}.{name}", "must be valid Unicode text without NUL characters")
        values[target] = value
    return values
