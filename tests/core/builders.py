"""Hook requests for the protocol tests, built from the Sandbox's own captured order-sign."""
from __future__ import annotations

import copy
import uuid
from datetime import date, timedelta

from tests.conftest import sandbox_request

PATIENT_ID = "pat-1"
SERVICE_FOR_HOOK = {
    "order-sign": "baclofen-order-sign",
    "order-select": "baclofen-order-select",
    "medication-prescribe": "baclofen-medication-prescribe",
    "patient-view": "baclofen-patient-view",
}


def days_ago(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


def patient() -> dict:
    return {"resourceType": "Patient", "id": PATIENT_ID, "gender": "female",
            "birthDate": "1950-01-01", "name": [{"family": "Test", "given": ["Ann"]}]}


def bundle(*resources: dict, next_url: str | None = None) -> dict:
    result = {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
              "entry": [{"resource": r} for r in resources]}
    if next_url:
        result["link"] = [{"relation": "next", "url": next_url}]
    return result


def observation(obs_id: str, loinc: str, value: float, unit: str, days_old: int = 10) -> dict:
    return {
        "resourceType": "Observation", "id": obs_id, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "effectiveDateTime": days_ago(days_old),
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


def active_baclofen(order_id: str = "active-1", days_old: int = 60) -> dict:
    draft = copy.deepcopy(sandbox_request("order-sign-baclofen")["context"]["draftOrders"]["entry"][0]["resource"])
    draft.update(id=order_id, status="active", authoredOn=days_ago(days_old), category=[draft["category"]])
    return draft


def complete_prefetch(**replace) -> dict:
    """Normal labs, no other medication, a spasticity diagnosis."""
    prefetch = {
        "patient": patient(),
        "conditions": sandbox_request("order-select-baclofen")["prefetch"]["conditions"],
        "meds": bundle(),
        "creatinine": bundle(),
        "egfr": bundle(observation("egfr-1", "98979-8", 85, "mL/min/{1.73_m2}")),
        "potassium": bundle(observation("k-1", "2823-3", 4.2, "mmol/L")),
        "magnesium": bundle(observation("mg-1", "19123-9", 2.0, "mg/dL")),
        "procedures": bundle(),
    }
    prefetch.update(replace)
    return {key: value for key, value in prefetch.items() if value != "omit"}


def hook_request(hook: str = "order-sign", prefetch: dict | None = None,
                 fhir_server: str | None = None, token: str | None = None) -> dict:
    """A baclofen 20 mg x3/day draft (the Sandbox's order) for the given hook."""
    body = sandbox_request("order-sign-baclofen")
    body["hookInstance"] = str(uuid.uuid4())
    body["hook"] = hook
    body.pop("fhirServer", None)
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    if hook == "order-select":
        body["context"]["selections"] = [f"MedicationRequest/{draft['id']}"]
    if hook == "medication-prescribe":
        body["context"]["medications"] = {"resourceType": "Bundle", "entry": [{"resource": to_stu3(draft)}]}
        del body["context"]["draftOrders"]
    if hook == "patient-view":  # about the chart: no orders in the context
        del body["context"]["draftOrders"]
    body["prefetch"] = complete_prefetch() if prefetch is None else prefetch
    if fhir_server:
        body["fhirServer"] = fhir_server
    if token:
        body["fhirAuthorization"] = {"access_token": token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "cds-service"}
    return body


def to_stu3(draft: dict) -> dict:
    stu3 = copy.deepcopy(draft)
    for dosage in stu3.get("dosageInstruction", []):
        dose = dosage.pop("doseAndRate")[0]
        dosage["doseQuantity"] = dose["doseQuantity"]
    return stu3
