"""A fast, strict check that fhir.resources would accept an R4 resource exactly as it is.

fhir.resources (service/parsing.py) stays the reference: it validates, repairs and drops.
It costs ~0.1-0.4 ms a resource; this check costs a few microseconds and answers only
"yes, the reference would return this resource unchanged" or "ask the reference". It
knows the elements EHRs commonly send on the resource types the rules read, every one of
them typed and format-checked at least as strictly as the reference (unknown keys,
extensions, narrative, contained resources, empty lists: ask the reference). So a resource
it accepts reads the same as through the reference, and one it declines is read by the
reference: the clinical answer never depends on which path was taken.
tests/core/test_fast_check.py checks this against fhir.resources on every fixture and on
fuzzed resources.
"""
from __future__ import annotations

import math
import re
from datetime import date

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

# The reference's own patterns, read by pydantic-core's Rust regex engine as they are for
# fhir.resources; anchored here, where the reference only searches.
_STRING = r"[ \r\n\t\S]+"
_CODE = r"[^\s]+(\s[^\s]+)*"
_ID = r"[A-Za-z0-9\-.]{1,64}"
_URI = r"\S+"
_DATE = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?")
_DATETIME = re.compile(
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})"
    r"(?:T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00))?)?)?")
_INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?"
    r"(?:Z|[+-](?:0[0-9]|1[0-3]):[0-5][0-9]|[+-]14:00)")


def _matching(pattern: str):
    """Checked in Rust, without a call back into Python for each string."""
    return cs.str_schema(pattern=f"^(?:{pattern})$", regex_engine="rust-regex", strict=True)


def _calendar(pattern: re.Pattern):
    def check(value: str) -> str:
        match = pattern.fullmatch(value)
        if not match:
            raise ValueError("format")
        year, month, day = (int(part) if part else 1 for part in match.groups()[:3])
        date(year, month, day)  # ValueError on 2026-02-30, month 13, year 0
        return value
    return cs.no_info_after_validator_function(check, cs.str_schema(strict=True))


def _finite(value):
    if isinstance(value, bool) or not math.isfinite(value):
        raise ValueError("decimal")
    return value


STRING = _matching(_STRING)
CODE = _matching(_CODE)
ID = _matching(_ID)
URI = _matching(_URI)
DATE = _calendar(_DATE)
DATETIME = _calendar(_DATETIME)
INSTANT = _calendar(_INSTANT)
DECIMAL = cs.no_info_after_validator_function(
    _finite, cs.union_schema([cs.int_schema(strict=True), cs.float_schema(strict=True)]))
BOOLEAN = cs.bool_schema(strict=True)
POSITIVE_INT = cs.int_schema(strict=True, ge=1, le=2_147_483_647)
UNSIGNED_INT = cs.int_schema(strict=True, ge=0, le=2_147_483_647)


def _element(**fields) -> dict:
    """A FHIR datatype: only the listed keys, each optional; anything else declines."""
    return cs.typed_dict_schema(
        {name: cs.typed_dict_field(schema, required=False) for name, schema in fields.items()},
        extra_behavior="forbid", strict=True)


def _list(item) -> dict:
    return cs.list_schema(item, min_length=1, strict=True)


CODING = _element(system=URI, version=STRING, code=CODE, display=STRING, userSelected=BOOLEAN)
CONCEPT = _element(coding=_list(CODING), text=STRING)
REFERENCE = _element(reference=STRING, type=URI, display=STRING)
QUANTITY = _element(value=DECIMAL, comparator=CODE, unit=STRING, system=URI, code=CODE)
PERIOD = _element(start=DATETIME, end=DATETIME)
RATIO = _element(numerator=QUANTITY, denominator=QUANTITY)
RANGE = _element(low=QUANTITY, high=QUANTITY)
IDENTIFIER = _element(use=CODE, type=CONCEPT, system=URI, value=STRING)
META = _element(versionId=ID, lastUpdated=INSTANT, source=URI)
HUMAN_NAME = _element(use=CODE, text=STRING, family=STRING, given=_list(STRING),
                      prefix=_list(STRING), suffix=_list(STRING))
TIMING_REPEAT = _element(
    boundsPeriod=PERIOD, boundsDuration=QUANTITY, count=POSITIVE_INT, duration=DECIMAL,
    durationUnit=CODE, frequency=POSITIVE_INT, frequencyMax=POSITIVE_INT, period=DECIMAL,
    periodMax=DECIMAL, periodUnit=CODE, when=_list(CODE))
TIMING = _element(repeat=TIMING_REPEAT, code=CONCEPT)
DOSE_AND_RATE = _element(type=CONCEPT, doseQuantity=QUANTITY, doseRange=RANGE)
DOSAGE = _element(
    sequence=cs.int_schema(strict=True, ge=-2_147_483_648, le=2_147_483_647), text=STRING,
    patientInstruction=STRING, additionalInstruction=_list(CONCEPT), timing=TIMING,
    asNeededBoolean=BOOLEAN, route=CONCEPT, method=CONCEPT, doseAndRate=_list(DOSE_AND_RATE),
    maxDosePerPeriod=RATIO, maxDosePerAdministration=QUANTITY)
DISPENSE_REQUEST = _element(numberOfRepeatsAllowed=UNSIGNED_INT, quantity=QUANTITY,
                            expectedSupplyDuration=QUANTITY, validityPeriod=PERIOD)
INGREDIENT = _element(itemCodeableConcept=CONCEPT, itemReference=REFERENCE, isActive=BOOLEAN,
                      strength=RATIO)


KNOWN: dict[str, set[str]] = {}  # resource type -> the top-level elements checked here


def _resource(resource_type: str, **fields) -> SchemaValidator:
    common = {"resourceType": cs.literal_schema([resource_type]), "id": ID, "meta": META}
    KNOWN[resource_type] = {*common, *fields}
    return SchemaValidator(_element(**common, **fields))


VALIDATORS = {
    "Patient": _resource(
        "Patient", identifier=_list(IDENTIFIER), active=BOOLEAN, name=_list(HUMAN_NAME),
        gender=CODE, birthDate=DATE),
    "Observation": _resource(
        "Observation", identifier=_list(IDENTIFIER), status=CODE, category=_list(CONCEPT),
        code=CONCEPT, subject=REFERENCE, encounter=REFERENCE, effectiveDateTime=DATETIME,
        effectivePeriod=PERIOD, effectiveInstant=INSTANT, issued=INSTANT,
        valueQuantity=QUANTITY, interpretation=_list(CONCEPT)),
    "Condition": _resource(
        "Condition", identifier=_list(IDENTIFIER), clinicalStatus=CONCEPT,
        verificationStatus=CONCEPT, category=_list(CONCEPT), code=CONCEPT, subject=REFERENCE,
        encounter=REFERENCE, onsetDateTime=DATETIME, recordedDate=DATETIME,
        abatementDateTime=DATETIME),
    "MedicationRequest": _resource(
        "MedicationRequest", identifier=_list(IDENTIFIER), status=CODE, intent=CODE,
        category=_list(CONCEPT), medicationCodeableConcept=CONCEPT, medicationReference=REFERENCE,
        subject=REFERENCE, encounter=REFERENCE, authoredOn=DATETIME, requester=REFERENCE,
        reasonCode=_list(CONCEPT), reasonReference=_list(REFERENCE), basedOn=_list(REFERENCE),
        priorPrescription=REFERENCE, dosageInstruction=_list(DOSAGE),
        dispenseRequest=DISPENSE_REQUEST),
    "Medication": _resource(
        "Medication", code=CONCEPT, status=CODE, form=CONCEPT, ingredient=_list(INGREDIENT)),
}


def accepts(resource: dict) -> bool:
    """True when fhir.resources (R4) would accept this resource unchanged."""
    resource_type = resource.get("resourceType")
    validator = VALIDATORS.get(resource_type) if isinstance(resource_type, str) else None
    if validator is None:
        return False
    try:
        validator.validate_python(resource)
    except ValidationError:
        return False
    return True
