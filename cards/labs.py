"""Lab Observations as values in the canonical unit (creatinine mg/dL, eGFR mL/min/1.73m2,
potassium and magnesium mmol/L), and the latest one within a lookback."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable

from .codes import coded
from .dates import days_between, observation_time
from .dose import as_number, quantity_unit
from .knowledge import Knowledge


@dataclass(frozen=True)
class LabValue:
    name: str  # creatinine | egfr | potassium | magnesium | sodium
    value: float  # canonical unit, rounded to the lab's reporting precision
    unit: str  # canonical unit
    when: datetime

    def label(self) -> str:
        return f"{self.value:g} {self.unit} ({self.when.date().isoformat()})"


def lab_values(observations: Iterable[dict], knowledge: Knowledge) -> dict[str, list[LabValue]]:
    """Usable values by lab name, most recent first (ties: lowest first)."""
    found: dict[str, list[LabValue]] = {}
    for observation in observations:
        value = lab_value(observation, knowledge)
        if value:
            found.setdefault(value.name, []).append(value)
    for values in found.values():
        values.sort(key=lambda v: (-v.when.timestamp(), v.value))
    return found


def lab_value(observation: dict, knowledge: Knowledge) -> LabValue | None:
    if observation.get("status") in knowledge["observation_status"]["ignored"]:
        return None
    name = _lab_name(observation, knowledge)
    quantity = observation.get("valueQuantity")
    when = observation_time(observation)
    if not name or not isinstance(quantity, dict) or when is None:
        return None
    value = as_number(quantity.get("value"))
    units = knowledge.lab_units[name]
    factor = units.get(quantity_unit(quantity, units))
    if factor is None or value is None:
        return None
    lab = knowledge["labs"][name]
    # Rounded to the reporting precision so 1.7 mg/dL compares as 0.70 mmol/L, not 0.699.
    canonical = round(value * factor, lab["round_to"])
    return LabValue(name, canonical, lab["canonical_unit"], when)


def _lab_name(observation: dict, knowledge: Knowledge) -> str | None:
    loinc = knowledge.systems["loinc"]
    for system, code in coded(observation.get("code")):
        if system == loinc and code in knowledge.lab_by_loinc:
            return knowledge.lab_by_loinc[code]
    return None


def latest_within(values: list[LabValue], now: datetime, days: float) -> LabValue | None:
    latest = values[0] if values else None
    if latest and days_between(latest.when, now) <= days:
        return latest
    return None
