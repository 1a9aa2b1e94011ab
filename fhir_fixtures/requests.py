"""CDS Hooks requests built from a fixture story, the way an EHR would send them.

    hook_request(story, "order-sign", prefetch="complete", prefetch_templates=templates)
    hook_request(story, "order-select", prefetch="none", fhir_server="http://127.0.0.1:5000")

order-sign and order-select carry the story's drafts (R4) in `context.draftOrders`
(order-select also selects them all); medication-prescribe carries them converted to STU3
in `context.medications`. A complete prefetch evaluates each template of the service's
discovery document against the story's data with the same search code the fixture FHIR
server uses, so prefetch and fetching see the same results.
"""
from __future__ import annotations

import uuid
from typing import Literal

from service.gather import fill_template

from .fhir_server import InMemoryFhir, operation_outcome

HOOKS = ("order-sign", "order-select", "medication-prescribe")
PATIENT_VIEW = "patient-view"  # about the patient's chart: no drafts in the context
DEFAULT_USER = "Practitioner/demo-prescriber"
# fullUrl base of prefetched search results when the request names no FHIR server.
UNSERVED_BASE = "http://fixtures.invalid/fhir"

# R4 MedicationRequest elements STU3 does not have (renamed ones are converted instead).
_R4_ONLY_REQUEST = ("statusReason", "doNotPerform", "reportedBoolean", "reportedReference",
                    "performer", "performerType", "instantiatesCanonical", "instantiatesUri",
                    "insurance", "courseOfTherapyType")
_R4_ONLY_DISPENSE = ("initialFill", "dispenseInterval")


def hook_request(story: dict, hook: str, prefetch: Literal["complete", "none"] = "complete",
                 fhir_server: str | None = None, prefetch_templates: dict | None = None, *,
                 drafts: list[dict] | None = None, fhir: InMemoryFhir | None = None,
                 fhir_authorization: dict | None = None, failing: bool = False,
                 user_id: str = DEFAULT_USER) -> dict:
    """A CDS Hooks request for `hook` about the story's patient and drafts (or `drafts`).

    A complete prefetch also carries the Medications the drafts reference (in the draft
    Bundle, as EHRs send them); with `failing`, the prefetch shows the story's
    `unavailable` queries as failed (see with_story_failures)."""
    if hook not in (*HOOKS, PATIENT_VIEW):
        raise ValueError(f"unknown hook {hook!r}; one of {HOOKS} or {PATIENT_VIEW}")
    others = story.get("other_drafts", []) if drafts is None else []
    drafts = story.get("drafts", []) if drafts is None else drafts
    carried = referenced_medications(drafts + others, story) if prefetch == "complete" else []
    context = hook_context(hook, story["patient"]["id"], drafts, user_id, carried, others)
    request = {"hookInstance": str(uuid.uuid4()), "hook": hook}
    if fhir_server:
        request["fhirServer"] = fhir_server
    if fhir_authorization:
        request["fhirAuthorization"] = fhir_authorization
    request["context"] = context
    if prefetch == "complete":
        if prefetch_templates is None:
            raise ValueError("a complete prefetch needs the service's prefetch templates")
        fhir = fhir or InMemoryFhir.from_stories([story])
        prefetch_values = complete_prefetch(prefetch_templates, context, fhir,
                                            fhir_server or UNSERVED_BASE)
        request["prefetch"] = (with_story_failures(prefetch_values, story) if failing
                               else prefetch_values)
    elif prefetch != "none":
        raise ValueError(f"prefetch must be 'complete' or 'none', got {prefetch!r}")
    return request


def hook_context(hook: str, patient_id: str, drafts: list[dict], user_id: str,
                 medications: list[dict] = (), others: list[dict] = ()) -> dict:
    """`others`: draft orders the prescriber has not selected (order-select); the other
    hooks decide them with the drafts."""
    context = {"userId": user_id, "patientId": patient_id}
    if hook == PATIENT_VIEW:
        return context
    if hook == "medication-prescribe":
        context["medications"] = collection([stu3_medication_request(d) for d in [*drafts, *others]]
                                            + [stu3_medication(m) for m in medications])
        return context
    if hook == "order-select":
        context["selections"] = [f"MedicationRequest/{draft['id']}" for draft in drafts]
    context["draftOrders"] = collection([*drafts, *others, *medications])
    return context


def referenced_medications(drafts: list[dict], story: dict) -> list[dict]:
    """The story's Medication resources that the drafts reference (not contained ones)."""
    medications = {f"Medication/{r['id']}": r for r in story.get("resources", [])
                   if r["resourceType"] == "Medication"}
    references = {(d.get("medicationReference") or {}).get("reference") for d in drafts}
    return [medications[ref] for ref in sorted(r for r in references if r in medications)]


def collection(resources: list[dict]) -> dict:
    bundle = {"resourceType": "Bundle", "type": "collection"}
    if resources:
        bundle["entry"] = [{"resource": resource} for resource in resources]
    return bundle


def complete_prefetch(templates: dict, context: dict, fhir: InMemoryFhir,
                      base_url: str) -> dict:
    """Each template filled with the context and answered: a resource, None, or a Bundle.

    `{{context.x}}` tokens are filled as the service fills them (service.gather)."""
    return {key: fhir.query(fill_template(template, context), base_url)
            for key, template in templates.items()}


def with_story_failures(prefetch: dict, story: dict) -> dict:
    """What an EHR whose queries failed sends: an OperationOutcome for a failed search, and
    nothing for a key it could not fill (the service then fetches it and meets the failure
    the fixture FHIR server simulates)."""
    prefetch = dict(prefetch)
    for key, reason in story.get("unavailable", {}).items():
        if reason == "OperationOutcome":
            prefetch[key] = operation_outcome("simulated search failure", "exception")
        else:
            prefetch.pop(key, None)
    return prefetch


# ---- R4 -> STU3 (medication-prescribe) ------------------------------------------------

def stu3_medication_request(draft: dict) -> dict:
    """The R4 draft as an STU3 MedicationRequest."""
    converted = {key: value for key, value in draft.items() if key not in _R4_ONLY_REQUEST}
    if isinstance(converted.get("category"), list):
        converted["category"] = converted["category"][0]
    if "encounter" in converted:
        converted["context"] = converted.pop("encounter")
    if "requester" in converted:
        converted["requester"] = {"agent": converted["requester"]}
    if "dosageInstruction" in converted:
        converted["dosageInstruction"] = [stu3_dosage(d) for d in converted["dosageInstruction"]]
    if "dispenseRequest" in converted:
        converted["dispenseRequest"] = {key: value for key, value in
                                        converted["dispenseRequest"].items()
                                        if key not in _R4_ONLY_DISPENSE}
    if "substitution" in converted:
        converted["substitution"] = stu3_substitution(converted["substitution"])
    if "contained" in converted:
        converted["contained"] = [stu3_medication(r) if r.get("resourceType") == "Medication" else r
                                  for r in converted["contained"]]
    return converted


def stu3_dosage(dosage: dict) -> dict:
    converted = {key: value for key, value in dosage.items() if key != "doseAndRate"}
    first = (dosage.get("doseAndRate") or [{}])[0]
    for key, value in first.items():
        if key.startswith("dose") or key.startswith("rate"):
            converted[key] = value
    return converted


def stu3_substitution(substitution: dict) -> dict:
    converted = {key: value for key, value in substitution.items() if not key.startswith("allowed")}
    if "allowedBoolean" in substitution:
        converted["allowed"] = substitution["allowedBoolean"]
    return converted


def stu3_medication(medication: dict) -> dict:
    converted = {key: value for key, value in medication.items() if key not in ("amount", "batch")}
    if "ingredient" in converted:
        converted["ingredient"] = [
            {**{k: v for k, v in ingredient.items() if k != "strength"},
             **({"amount": ingredient["strength"]} if "strength" in ingredient else {})}
            for ingredient in converted["ingredient"]]
    return converted
