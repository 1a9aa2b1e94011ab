"""Why baclofen is ordered: the draft's reason, else the patient's active conditions."""
from __future__ import annotations

from typing import Mapping

from .codes import concepts_of
from .knowledge import Knowledge
from .medication import reference_id

CRAMPS, SPASTICITY, RHEUMATIC, CEREBRAL, UNKNOWN = (
    "cramps", "spasticity", "rheumatic", "cerebral", "unknown")


def condition_is_active(condition: dict, knowledge: Knowledge) -> bool:
    """clinicalStatus active/recurrence/relapse or absent (R4 CodeableConcept or STU3 code)."""
    statuses = knowledge["condition_status"]
    if _status_code(condition.get("verificationStatus")) in statuses["ignored_verification"]:
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


def indication(reason: frozenset, has_reason: bool, active_conditions: frozenset) -> str:
    if has_reason:
        for name in (CRAMPS, SPASTICITY, RHEUMATIC, CEREBRAL):
            if name in reason:
                return name
        return UNKNOWN
    if SPASTICITY in active_conditions:
        return SPASTICITY
    if CRAMPS in active_conditions or "cirrhosis" in active_conditions:
        return CRAMPS
    return UNKNOWN
