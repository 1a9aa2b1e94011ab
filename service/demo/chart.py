"""A fixture patient's chart as the demo page shows it: banner, problems, labs, medications."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

SYSTEM_NAMES = {
    "http://loinc.org": "LOINC",
    "http://snomed.info/sct": "SNOMED CT",
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RxNorm",
}


@dataclass(frozen=True)
class ChartRow:
    name: str
    value: str
    when: str


@dataclass(frozen=True)
class PatientChart:
    id: str
    title: str  # the story, one line
    name: str
    age: str
    gender: str
    problems: tuple[ChartRow, ...]
    labs: tuple[ChartRow, ...]
    medications: tuple[ChartRow, ...]
    story_orders: tuple[ChartRow, ...]  # the story's own draft orders


def patient_chart(story: dict, today: date | None = None) -> PatientChart:
    patient = story["patient"]
    resources = story.get("resources", [])
    medications = {f"Medication/{r['id']}": r for r in resources if r["resourceType"] == "Medication"}
    return PatientChart(
        id=patient["id"],
        title=story.get("title", ""),
        name=person_name(patient),
        age=age_text(patient.get("birthDate"), today or date.today()),
        gender=patient.get("gender", "unknown"),
        problems=tuple(_problem(r) for r in resources if r["resourceType"] == "Condition"),
        labs=tuple(sorted((_lab(r) for r in resources if r["resourceType"] == "Observation"),
                          key=lambda row: row.when, reverse=True)),
        medications=tuple(_medication(r, medications) for r in resources
                          if r["resourceType"] == "MedicationRequest"),
        story_orders=tuple(_medication(draft, medications) for draft in story.get("drafts", [])),
    )


def person_name(patient: dict) -> str:
    for name in patient.get("name", []):
        if name.get("text"):
            return name["text"]
        parts = [*name.get("given", []), name.get("family", "")]
        if any(parts):
            return " ".join(part for part in parts if part)
    return f"Patient {patient.get('id', '')}"


def age_text(birth_date: str | None, today: date) -> str:
    if not birth_date:
        return "age unknown"
    born = date.fromisoformat(birth_date[:10]) if len(birth_date) >= 10 else None
    if born is None:
        return f"born {birth_date}"
    years = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    return f"{years} y"


def concept_text(concept: dict | None) -> str:
    if not concept:
        return ""
    if concept.get("text"):
        return concept["text"]
    for coding in concept.get("coding", []):
        if coding.get("display"):
            return coding["display"]
    codes = [_code_text(coding) for coding in concept.get("coding", []) if coding.get("code")]
    return ", ".join(codes)


def _code_text(coding: dict) -> str:
    """'LOINC 2160-0' for a coding without display."""
    system = SYSTEM_NAMES.get(coding.get("system", ""), "")
    return f"{system} {coding['code']}".strip()


def _problem(condition: dict) -> ChartRow:
    status = concept_text(condition.get("clinicalStatus")) or "status unknown"
    when = condition.get("onsetDateTime") or condition.get("recordedDate") or ""
    return ChartRow(concept_text(condition.get("code")), status, when[:10])


def _lab(observation: dict) -> ChartRow:
    quantity = observation.get("valueQuantity") or {}
    value = f"{quantity.get('value', '')} {quantity.get('unit') or quantity.get('code') or ''}".strip()
    if observation.get("status") not in (None, "final", "amended", "corrected"):
        value += f" ({observation['status']})"
    when = observation.get("effectiveDateTime") or (observation.get("effectivePeriod") or {}).get("start", "")
    return ChartRow(concept_text(observation.get("code")), value or "-", when[:10])


def _medication(request: dict, medications: dict[str, dict]) -> ChartRow:
    name = concept_text(request.get("medicationCodeableConcept"))
    reference = (request.get("medicationReference") or {}).get("reference", "")
    if not name and reference in medications:
        name = concept_text(medications[reference].get("code"))
    for contained in request.get("contained", []):
        if not name and f"#{contained.get('id')}" == reference:
            name = concept_text(contained.get("code"))
    doses = [d.get("text", "") for d in request.get("dosageInstruction", []) if d.get("text")]
    label = f"{name or reference or 'medication'}{': ' + '; '.join(doses) if doses else ''}"
    return ChartRow(label, request.get("status", ""), (request.get("authoredOn") or "")[:10])
