"""Structural validation with fhir.resources, tolerant where EHRs are sloppy.

Each resource the rules read is validated once (R4 through the R4B models, which accept R4
JSON of these resources; STU3 for medication-prescribe). The engine then reads the JSON
itself, now known to be well formed. Known sloppiness is repaired rather than rejected:
- a single object where FHIR wants a list (the Sandbox's MedicationRequest.category);
- a dateTime with a time but no zone, read as UTC;
- any other malformed element the rules do not read is dropped;
- an absent element is not a malformed one: missing required elements (the Sandbox's first
  draft has no intent and no medication) and the presence invariants checked on the whole
  resource are left to the engine, which reads every element as optional.
A resource whose essential elements are malformed is unreadable.
"""
from __future__ import annotations

import copy
import importlib
import re
from dataclasses import dataclass

from pydantic import ValidationError

from . import fast_check

_MODEL_PACKAGES = {"R4": "fhir.resources.R4B", "STU3": "fhir.resources.STU3"}

# What the rules read; a malformed element here makes the resource unreadable.
ESSENTIAL = {
    "Patient": {"resourceType", "id", "birthDate", "gender"},
    "Observation": {
        "resourceType", "id", "status", "code", "subject", "valueQuantity",
        "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued",
    },
    "Condition": {
        "resourceType", "id", "code", "clinicalStatus", "verificationStatus", "subject",
        "patient", "onsetDateTime", "assertedDate", "abatementDateTime",
    },
    "MedicationRequest": {
        "resourceType", "id", "status", "intent", "medicationCodeableConcept",
        "medicationReference", "subject", "authoredOn", "dosageInstruction",
        "reasonCode", "reasonReference", "priorPrescription", "basedOn", "contained",
    },
    "Medication": {"resourceType", "id", "code", "form", "ingredient"},
    "Procedure": {
        "resourceType", "id", "status", "code", "subject", "performedDateTime",
        "performedPeriod", "performedString", "performedAge", "performedRange",
    },
}
_NAIVE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_MAX_REPAIR_ROUNDS = 4


class Unreadable(Exception):
    """The resource's essential elements are malformed; `field` says where."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Parsed:
    resource: dict
    dropped: tuple[str, ...] = ()  # paths of non-essential elements removed


def model_class(resource_type: str, fhir_version: str):
    package = _MODEL_PACKAGES[fhir_version]
    module = importlib.import_module(f"{package}.{resource_type.lower()}")
    return getattr(module, resource_type)


# The medication-prescribe hook is STU3, but the EHRs that still send it often serve R4
# from their FHIR server: a resource that is not valid STU3 is read as R4 before it is
# called unreadable. The engine reads both shapes.
READ_AS = {"R4": ("R4",), "STU3": ("STU3", "R4")}


def parse_resource(resource: dict, fhir_version: str) -> Parsed:
    """Validate one resource, repairing what can be repaired; raise Unreadable otherwise."""
    if fhir_version == "R4" and fast_check.accepts(resource):
        return Parsed(resource)  # what the reference would return: see service/fast_check.py
    return parse_with_reference(resource, fhir_version)


def parse_with_reference(resource: dict, fhir_version: str) -> Parsed:
    """parse_resource through fhir.resources alone (the reference the fast check follows)."""
    first_problem = None
    for version in READ_AS[fhir_version]:
        try:
            return _parse_as(resource, version)
        except Unreadable as problem:
            first_problem = first_problem or problem
    raise first_problem


def _parse_as(resource: dict, fhir_version: str) -> Parsed:
    resource_type = resource.get("resourceType")
    model = model_class(resource_type, fhir_version)
    essential = ESSENTIAL.get(resource_type, {"resourceType", "id"})
    dropped: list[str] = []
    for _ in range(_MAX_REPAIR_ROUNDS):
        try:
            model.model_validate(resource)
            return Parsed(resource, tuple(dropped))
        except ValidationError as exc:
            errors = [e for e in exc.errors() if not _is_absence(e)]
            if not errors:
                return Parsed(resource, tuple(dropped))
            resource = _repair(resource, errors, essential, dropped)
        except (KeyError, TypeError, ValueError) as exc:  # e.g. an unknown contained type
            raise Unreadable(resource_type, f"not a valid {resource_type}: {exc}") from None
    raise Unreadable(resource_type, "could not be repaired")


def _is_absence(error: dict) -> bool:
    return error["type"].endswith("missing") or not error["loc"]


def _repair(resource: dict, errors: list[dict], essential: set[str], dropped: list[str]) -> dict:
    repaired = copy.deepcopy(resource)
    for error in errors:
        loc = [part for part in error["loc"] if part != "__root__"]
        path = _dotted(loc)
        value = _get(repaired, loc)
        if error["type"] == "list_type" and isinstance(value, (dict, str)):
            _set(repaired, loc, [value])
        elif isinstance(value, str) and _NAIVE_DATETIME.match(value):
            _set(repaired, loc, value + ("Z" if value.count(":") == 2 else ":00Z"))
        elif loc[0] not in essential:
            repaired.pop(loc[0], None)
            dropped.append(str(loc[0]))
        else:
            raise Unreadable(path, error["msg"])
    return repaired


def _get(data, loc):
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _set(data, loc, value) -> None:
    parent = _get(data, loc[:-1])
    if isinstance(parent, (dict, list)):
        parent[loc[-1]] = value


def _dotted(loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


_CODE = {"coding": [{"system": "http://loinc.org", "code": "0", "display": "x"}], "text": "x"}
_QUANTITY = {"value": 1, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
_REF = {"reference": "Patient/warm-up"}
_DOSAGE = {"text": "x", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"},
                                   "code": _CODE},
           "maxDosePerPeriod": {"numerator": _QUANTITY, "denominator": _QUANTITY}}
# One resource of each type with the nested elements the rules read, so that validation
# builds every nested model before the first clinical call (that first build costs ~30 ms).
_WARM_UP = {
    "Patient": {"birthDate": "1950-01-01", "gender": "female", "name": [{"family": "x"}]},
    "Observation": {"status": "final", "code": _CODE, "subject": _REF, "valueQuantity": _QUANTITY,
                    "effectiveDateTime": "2026-01-01T00:00:00Z"},
    "Condition": {"code": _CODE, "clinicalStatus": _CODE, "subject": _REF},
    "Medication": {"code": _CODE, "form": _CODE},
    "Procedure": {"status": "completed", "code": _CODE, "subject": _REF,
                  "performedPeriod": {"start": "2026-01-01T00:00:00Z"}},
    "MedicationRequest": {"status": "draft", "intent": "order", "subject": _REF,
                          "medicationCodeableConcept": _CODE, "reasonCode": [_CODE],
                          "category": [_CODE], "authoredOn": "2026-01-01",
                          "dispenseRequest": {"expectedSupplyDuration": _QUANTITY}},
}


def warm_up() -> None:
    """Import the models and build their validators now, not on the first clinical call."""
    for version in _MODEL_PACKAGES:
        for resource_type, example in _WARM_UP.items():
            resource = {"resourceType": resource_type, "id": "warm-up", **example}
            if resource_type == "MedicationRequest":
                dose = {"doseQuantity": _QUANTITY} if version == "STU3" else \
                    {"doseAndRate": [{"doseQuantity": _QUANTITY}]}
                resource["dosageInstruction"] = [{**_DOSAGE, **dose}]
            try:
                parse_resource(resource, version)
            except Unreadable:
                pass
