"""Writing a daily dose into a MedicationRequest.

Placeholder on branch i9-patientview with the contract's interface, until i9-dose's
dose writer (whole tablets, product switch) is merged: on merge, take i9-dose's file.
"""
from __future__ import annotations

from dataclasses import dataclass

from .dose import Strength, rewrite_dose
from .knowledge import Knowledge


@dataclass(frozen=True)
class WrittenOrder:
    resource: dict  # the whole MedicationRequest
    description: str  # the action's description
    how: str  # the regimen, e.g. "10 mg three times daily (30 mg/day)"


def write_daily_dose(request: dict, daily_mg: float, strength: Strength | None,
                     knowledge: Knowledge) -> WrittenOrder | None:
    rewritten = rewrite_dose(request, daily_mg, strength, knowledge)
    if rewritten is None:
        return None
    resource, how = rewritten
    return WrittenOrder(resource, f"Baclofen {how}.", how)
