"""Why baclofen is ordered: the draft's reason, else the patient's active conditions."""
from __future__ import annotations

from typing import Mapping

from .codes import concepts_of
from .knowledge import Knowledge
from .medication import reference_id

CRAMPS, SPASTICITY, RHEUMATIC, CEREBRAL, UNKNOWN = (
    "cramps", "spasticity", "rheumatic", "cerebral", "unknown")
SPINAL = "spinal"  # a condition concept (multiple sclerosis, spinal cord injury), not an indication


def condition_is_active(condition: dict, knowledge: Knowledge) -> bool:
    """clinicalStatus active/recurrence/relapse or absent (R4 CodeableConcept or STU3 code)."""
    statuses = knowledge["condition_status"]
    if not condition_counts(condition, knowledge):
        return False
    clinical = _status_code(condition.get("clinicalStatus"))
    return clinical is None or clinical in statuses["active"]


def _status_code(status) -> str | None:
    if isinstance(status, str):
        return status
    for coding in (status or {}).get("coding") or ():
        if coding.get("code"):
            return coding["code"]
    return None


def reason_concepts(request: dict, conditions_by_id: Mapping[str, frozenset],
                    knowledge: Knowledge) -> tuple[frozenset, bool]:
    """Concepts of the draft's reasonCode and reasonReference; second: whether it gives any."""
    found: set[str] = set()
    codes = request.get("reasonCode") or ()
    references = request.get("reasonReference") or ()
    for concept in codes:
        found |= concepts_of(concept, knowledge)
    for reference in references:
        found |= conditions_by_id.get(reference_id(reference, "Condition") or "", frozenset())
    return frozenset(found), bool(codes or references)


def condition_counts(condition: dict, knowledge: Knowledge) -> bool:
    """False for a refuted or entered-in-error Condition: it never counts, even as a reason."""
    ignored = knowledge["condition_status"]["ignored_verification"]
    return _status_code(condition.get("verificationStatus")) not in ignored


def indication(reason: frozenset, has_reason: bool, active_conditions: frozenset) -> str:
    if has_reason:
        if CRAMPS in reason:
            return CRAMPS
        if SPASTICITY in reason:
            return _spasticity_origin(reason, active_conditions)
        for name in (RHEUMATIC, CEREBRAL):
            if name in reason:
                return name
        return UNKNOWN
    if SPASTICITY in active_conditions:
        return _spasticity_origin(active_conditions, active_conditions)
    if CRAMPS in active_conditions or "cirrhosis" in active_conditions:
        return CRAMPS
    return UNKNOWN


def _spasticity_origin(named: frozenset, active_conditions: frozenset) -> str:
    """Plain spasticity with an active cerebral-origin Condition and none of spinal origin
    (multiple sclerosis, spinal cord injury) is cerebral."""
    if CEREBRAL in named:
        return CEREBRAL
    if SPINAL in named or SPINAL in active_conditions or CEREBRAL not in active_conditions:
        return SPASTICITY
    return CEREBRAL
