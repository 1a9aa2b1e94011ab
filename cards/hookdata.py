"""The boundary between the service and the clinical engine.

The service gathers FHIR data for one hook call (prefetch, then its own FHIR queries),
checks it structurally with fhir.resources, and hands it over as a `HookData`. Everything
in here is plain JSON (dicts as they came on the wire, after repair of malformed
non-essential elements), so the engine never sees HTTP and never does I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Mapping

# Names of the pieces of data the rules read. They are also the prefetch keys the
# service declares, so "which query failed" and "which check could not run" share one
# vocabulary.
PATIENT = "patient"
CONDITIONS = "conditions"
MEDS = "meds"
CREATININE = "creatinine"
EGFR = "egfr"
POTASSIUM = "potassium"
MAGNESIUM = "magnesium"
MEDICATION = "medication"  # a Medication a draft references that had to be fetched
PROCEDURES = "procedures"  # dialysis procedures

DATA_KEYS = (PATIENT, CONDITIONS, MEDS, CREATININE, EGFR, POTASSIUM, MAGNESIUM, PROCEDURES)


@dataclass(frozen=True)
class HookData:
    hook: str  # "order-select" | "order-sign" | "medication-prescribe"
    fhir_version: str  # "R4" | "STU3" (medication-prescribe)
    now: datetime  # timezone-aware; rules compare dates against it
    patient_id: str
    # The MedicationRequests being decided (order-select: only the selected ones).
    drafts: tuple[dict, ...]
    patient: dict | None = None
    # The patient's own MedicationRequests (active and recent), never the drafts.
    medication_requests: tuple[dict, ...] = ()
    # Medication resources by reference ("Medication/123"), from the draft Bundle,
    # `_include`d search results or fetched; contained ones stay inside their request.
    medications: Mapping[str, dict] = field(default_factory=dict)
    conditions: tuple[dict, ...] = ()
    # Lab Observations (creatinine, eGFR, potassium, magnesium) from all lab queries.
    observations: tuple[dict, ...] = ()
    # Procedure resources of the patient (R4 JSON): dialysis performed recently.
    procedures: tuple[dict, ...] = ()
    # order-select: the unselected entries of context.draftOrders (not judged themselves,
    # but they count for cramp context, duplicates and the combined daily dose).
    other_drafts: tuple[dict, ...] = ()
    # Data key -> why it could not be read ("timeout", "HTTP 503", "OperationOutcome",
    # "unreadable"). A key absent here with no resources means "nothing on record".
    unavailable: Mapping[str, str] = field(default_factory=dict)
