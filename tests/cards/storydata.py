"""Turns a patient story (fhir_fixtures) into the HookData the service would hand over."""
from __future__ import annotations

from datetime import datetime, timezone

from cards.hookdata import HookData


def hookdata_from_story(story: dict, hook: str = "order-sign", now: datetime | None = None,
                        failing: bool = False) -> HookData:
    """`failing`: simulate the story's `unavailable` queries (their data is then absent)."""
    by_type: dict[str, list[dict]] = {}
    for resource in story["resources"]:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    unavailable = story.get("unavailable", {}) if failing else {}
    observations = [o for o in by_type.get("Observation", []) if not _failed_lab(o, unavailable)]
    return HookData(
        hook=hook,
        fhir_version="R4",
        now=now or datetime.now(timezone.utc),
        patient_id=story["patient"]["id"],
        # order-select judges only the selected drafts; the other hooks judge them all.
        drafts=tuple(story["drafts"] + ([] if hook == "order-select" else story.get("other_drafts", []))),
        other_drafts=tuple(story.get("other_drafts", [])) if hook == "order-select" else (),
        patient=story["patient"],
        # As the service does: an active order with a draft's id stays (the draft changes it).
        medication_requests=tuple(by_type.get("MedicationRequest", [])),
        procedures=tuple(by_type.get("Procedure", [])),
        medications={f"Medication/{m['id']}": m for m in by_type.get("Medication", [])},
        conditions=tuple(by_type.get("Condition", [])),
        observations=tuple(observations),
        unavailable=unavailable,
    )


def _failed_lab(observation: dict, unavailable: dict) -> bool:
    """A lab whose query failed is not in the data the service hands over."""
    if not unavailable:
        return False
    code = observation["code"]["coding"][0]["code"]
    failed = {"egfr": "98979-8", "creatinine": "2160-0", "potassium": "2823-3", "magnesium": "2601-3"}
    return any(failed[key] == code for key in unavailable if key in failed)
