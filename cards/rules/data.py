"""Rule 20: checks that could not run because a FHIR query failed."""
from __future__ import annotations

from ..cardbuilder import Finding
from ..facts import Facts
from ..hookdata import (CONDITIONS, CREATININE, EGFR, MAGNESIUM, MEDICATION, MEDS, PATIENT,
                        POTASSIUM, PROCEDURES)
from .base import rule
from .electrolytes import cramp_drafts

CHECKS = {
    PATIENT: "age (older adults, CKD-EPI from creatinine)",
    CONDITIONS: "diagnoses (dialysis, cirrhosis, indication)",
    MEDS: "current baclofen (duplicates, titration, abrupt stop, naive start)",
    EGFR: "renal function (eGFR)",
    CREATININE: "renal function (serum creatinine)",
    POTASSIUM: "potassium",
    MAGNESIUM: "magnesium",
    MEDICATION: "which drug a draft orders (referenced Medication)",
    PROCEDURES: "dialysis procedures",
}


def needed_keys(facts: Facts) -> list[str]:
    """The data the rules for these drafts read."""
    kinds = {d.order.kind for d in facts.drafts if d.starting}
    needed = []
    if "baclofen" in kinds:
        needed += [PATIENT, CONDITIONS, MEDS, EGFR, CREATININE, PROCEDURES]
        if cramp_drafts(facts) or CONDITIONS in facts.unavailable:
            needed += [POTASSIUM, MAGNESIUM]
    if kinds & {"cyclobenzaprine", "quinidine", "benzodiazepines"}:
        needed += [PATIENT, CONDITIONS, MEDS]
    if any(d.order.oral_baclofen and not d.starting for d in facts.drafts):
        needed.append(MEDS)
    if any(d.order.unresolved for d in facts.drafts):
        needed.append(MEDICATION)
    return list(dict.fromkeys(needed))


@rule(20, "data-unavailable", "warning",
      "a FHIR query a rule needs failed (timeout, HTTP error, OperationOutcome, unreadable body);"
      " a value simply missing from the record is not a failure")
def data_unavailable(facts: Facts):
    if not facts.unavailable:
        return None
    failed = [key for key in needed_keys(facts) if key in facts.unavailable]
    if not failed:
        return None
    lines = "\n".join(f"- {CHECKS[key]}: {facts.unavailable[key]}" for key in failed)
    names = ", ".join(dict.fromkeys(CHECKS[key].split(" (")[0] for key in failed))
    return Finding("data-unavailable", "warning",
                   f"Some baclofen checks could not run: {names}"[:139],
                   f"These checks could not run because the data could not be read:\n\n{lines}\n\n"
                   "Check them by hand before signing.")
