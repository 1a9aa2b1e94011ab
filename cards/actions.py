"""Suggestion actions: delete or re-dose a draft, propose a lab order or a medication.

Created resources are drafts/proposals for the patient, in the hook's FHIR version: R4
ServiceRequest / MedicationRequest, or STU3 ProcedureRequest / MedicationRequest for
medication-prescribe.
"""
from __future__ import annotations

from datetime import timedelta

from .dose_writer import write_daily_dose
from .facts import Draft, Facts
from .taper import TaperPlan, taper_plan


def delete_draft(draft: Draft) -> dict | None:
    if not draft.order.id:
        return None
    return {"type": "delete", "description": f"Remove the draft order for {draft.order.name}.",
            "resourceId": f"MedicationRequest/{draft.order.id}"}


def update_dose(facts: Facts, draft: Draft, target_mg: float) -> dict | None:
    """The draft rewritten to `target_mg` mg/day (cards/dose_writer.py); None when it cannot be."""
    written = write_daily_dose(draft.order.resource, target_mg, draft.order.strength,
                               facts.knowledge, stu3=facts.stu3, name=draft.order.name)
    if written is None:
        return None
    return {"type": "update", "description": written.description, "resource": written.resource}


def taper_plan_for(facts: Facts, draft: Draft, target_mg: float, continuing: bool) -> TaperPlan | None:
    """The taper from D0 to `target_mg` (0: off) written into the draft (cards/taper.py). A stop
    draft without dosage takes the dosage and product of the order it stops."""
    d0, changed = facts.current_dose(draft)
    if d0 is None:
        return None
    request, strength = draft.order.resource, draft.order.strength
    if changed and not request.get("dosageInstruction"):
        request = {**request, "dosageInstruction": changed[0].resource.get("dosageInstruction") or []}
    if strength is None and changed:
        strength = changed[0].strength
    return taper_plan(request, d0, target_mg, strength, facts.knowledge, continuing,
                      stu3=facts.stu3, name=draft.order.name, start=facts.now.date())


def taper_action(plan: TaperPlan | None) -> dict | None:
    if plan is None:
        return None
    return {"type": "update", "description": plan.description, "resource": plan.resource}


def taper(facts: Facts, draft: Draft, target_mg: float, continuing: bool) -> dict | None:
    """The draft replaced by the taper plan (update action); None when none can be written."""
    return taper_action(taper_plan_for(facts, draft, target_mg, continuing))


def order_lab(facts: Facts, lab: str, within_days: int | None = None) -> dict:
    """A proposed lab order (LOINC code from knowledge `orders`)."""
    orders = facts.knowledge["orders"]
    display = orders[f"{lab}_display"]
    resource = {
        "resourceType": "ProcedureRequest" if facts.stu3 else "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "code": {"coding": [{"system": facts.knowledge.systems["loinc"], "code": orders[lab],
                             "display": display}], "text": display},
        "subject": _patient(facts),
        "authoredOn": facts.now.date().isoformat(),
    }
    if within_days:
        end = (facts.now + timedelta(days=within_days)).date().isoformat()
        resource["occurrencePeriod"] = {"start": facts.now.date().isoformat(), "end": end}
    return {"type": "create", "description": f"Order {display}.", "resource": resource}


def propose_medication(facts: Facts, medication: dict, dosage: dict | None, why: str) -> dict:
    """A MedicationRequest with intent proposal; `dosage` is written in R4 form and moved
    to the STU3 form (dose directly on the Dosage) for medication-prescribe."""
    resource = {
        "resourceType": "MedicationRequest",
        "status": "draft",
        "intent": "proposal",
        "medicationCodeableConcept": medication,
        "subject": _patient(facts),
        "authoredOn": facts.now.date().isoformat(),
    }
    if dosage:
        resource["dosageInstruction"] = [_stu3_dosage(dosage) if facts.stu3 else dosage]
    return {"type": "create", "description": why, "resource": resource}


def _stu3_dosage(dosage: dict) -> dict:
    converted = {k: v for k, v in dosage.items() if k != "doseAndRate"}
    for dose_and_rate in dosage.get("doseAndRate") or ():
        converted.update({k: v for k, v in dose_and_rate.items() if k in ("doseQuantity", "doseRange")})
    return converted


def mg(facts: Facts, value: float, unit: str = "mg") -> dict:
    return {"value": value, "unit": unit, "system": facts.knowledge.systems["ucum"], "code": unit}


def _patient(facts: Facts) -> dict:
    return {"reference": f"Patient/{facts.data.patient_id}"}


def suggestion(label: str, *actions: dict | None, recommended: bool = True) -> dict | None:
    """None when none of the actions could be built (e.g. a draft without an id)."""
    actions = tuple(a for a in actions if a)
    if not actions:
        return None
    return {"label": label, "isRecommended": recommended, "actions": list(actions)}
