"""The CDS services, each declared once; discovery and request checks are derived from here."""
from __future__ import annotations

from dataclasses import dataclass

from cards import hookdata

PATIENT_TOKEN = "{{context.patientId}}"


@dataclass(frozen=True)
class ContextField:
    name: str
    kind: str  # "string" | "string-list" | "bundle"
    required: bool = True


@dataclass(frozen=True)
class ServiceDeclaration:
    id: str
    hook: str
    title: str
    description: str
    fhir_version: str  # "R4" or "STU3": how resources of this hook are read
    context: tuple[ContextField, ...]
    # The context field holding the Bundle of orders being decided; None for a hook about
    # the patient rather than an order (patient-view).
    drafts_field: str | None

    def discovery_entry(self, prefetch: dict[str, str]) -> dict:
        return {
            "hook": self.hook,
            "title": self.title,
            "description": self.description,
            "id": self.id,
            "prefetch": prefetch,
            "usageRequirements": (
                "Send the prefetch it declares, or fhirServer with a fhirAuthorization "
                "token that can read Patient, Observation, Condition, MedicationRequest, "
                "Medication and Procedure of the patient."
            ),
        }


_USER = ContextField("userId", "string")
_PATIENT = ContextField("patientId", "string")
_ENCOUNTER = ContextField("encounterId", "string", required=False)
_DESCRIPTION = (
    "Checks an oral baclofen order against renal function, electrolytes, dose ceilings "
    "and titration, age, duplicate therapy and indication; flags drugs to avoid for "
    "muscle cramps. Cards name the value behind them and offer one-click fixes."
)

SERVICES: tuple[ServiceDeclaration, ...] = (
    ServiceDeclaration(
        id="baclofen-order-sign",
        hook="order-sign",
        title="Baclofen prescribing check (order sign)",
        description=_DESCRIPTION,
        fhir_version="R4",
        context=(_USER, _PATIENT, _ENCOUNTER, ContextField("draftOrders", "bundle")),
        drafts_field="draftOrders",
    ),
    ServiceDeclaration(
        id="baclofen-order-select",
        hook="order-select",
        title="Baclofen prescribing check (order select)",
        description=_DESCRIPTION,
        fhir_version="R4",
        context=(
            _USER, _PATIENT, _ENCOUNTER,
            ContextField("selections", "string-list"),
            ContextField("draftOrders", "bundle"),
        ),
        drafts_field="draftOrders",
    ),
    ServiceDeclaration(
        id="baclofen-medication-prescribe",
        hook="medication-prescribe",
        title="Baclofen prescribing check (medication-prescribe, deprecated hook)",
        description=_DESCRIPTION + " For EHRs that still send the STU3 medication-prescribe hook.",
        fhir_version="STU3",
        context=(_USER, _PATIENT, _ENCOUNTER, ContextField("medications", "bundle")),
        drafts_field="medications",
    ),
    ServiceDeclaration(
        id="baclofen-patient-view",
        hook="patient-view",
        title="Muscle cramps on baclofen: next steps (patient view)",
        description=(
            "When the chart of an adult on oral baclofen for muscle cramps opens, walks the "
            "cramps algorithm for this patient: dose optimisation within the renal limits, "
            "physical measures, potassium and magnesium, albumin or a muscle relaxant at the "
            "maximum dose, and specialist referral; names what is done and what is next."
        ),
        fhir_version="R4",
        context=(_USER, _PATIENT, _ENCOUNTER),
        drafts_field=None,
    ),
)

SERVICES_BY_ID = {service.id: service for service in SERVICES}

# Data key -> FHIR resource type its query returns (a read for the patient, searches else).
RESOURCE_TYPE = {
    hookdata.PATIENT: "Patient",
    hookdata.CONDITIONS: "Condition",
    hookdata.MEDS: "MedicationRequest",
    hookdata.CREATININE: "Observation",
    hookdata.EGFR: "Observation",
    hookdata.POTASSIUM: "Observation",
    hookdata.MAGNESIUM: "Observation",
    hookdata.PROCEDURES: "Procedure",
}
LAB_KEYS = (hookdata.CREATININE, hookdata.EGFR, hookdata.POTASSIUM, hookdata.MAGNESIUM)
# Enough recent results to find the latest usable one past an entered-in-error or a
# preliminary result; the rules only read the most recent within the lookback.
LAB_COUNT = 10
MEDS_COUNT = 100
# Dialysis is recognised from recent Procedures (three sessions a week): the latest suffice.
PROCEDURES_COUNT = 20


def prefetch_templates(knowledge) -> dict[str, str]:
    """Narrow queries for what the rules read; lab codes come from the knowledge file."""
    templates = {
        hookdata.PATIENT: f"Patient/{PATIENT_TOKEN}",
        hookdata.CONDITIONS: (
            f"Condition?patient={PATIENT_TOKEN}&clinical-status=active,recurrence,relapse"
        ),
        hookdata.MEDS: (
            f"MedicationRequest?patient={PATIENT_TOKEN}&_sort=-authoredon"
            f"&_count={MEDS_COUNT}&_include=MedicationRequest:medication"
        ),
        hookdata.PROCEDURES: _procedure_query(knowledge),
    }
    for key in LAB_KEYS:
        codes = ",".join(f"{system}|{code}" for system, code in knowledge.lab_codes(key))
        templates[key] = (
            f"Observation?patient={PATIENT_TOKEN}&code={codes}&_sort=-date&_count={LAB_COUNT}"
        )
    return templates


def _procedure_query(knowledge) -> str:
    """Dialysis Procedures (codes and statuses of knowledge `dialysis_procedures`)."""
    section, systems = knowledge["dialysis_procedures"], knowledge.systems
    codes = [f"{systems['snomed']}|{code}" for code in section["snomed"]]
    codes += [f"{systems['cpt']}|{code}" for code in section["cpt"]]
    return (f"Procedure?patient={PATIENT_TOKEN}&status={','.join(section['statuses'])}"
            f"&code={','.join(codes)}&_sort=-date&_count={PROCEDURES_COUNT}")


def discovery_document(knowledge) -> dict:
    prefetch = prefetch_templates(knowledge)
    return {"services": [service.discovery_entry(prefetch) for service in SERVICES]}
