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
    reported_as: str = ""  # a value given with a comparator, as reported (">29")

    def label(self) -> str:
        return f"{self.reported_as or f'{self.value:g}'} {self.unit} ({self.when.date().isoformat()})"


@dataclass(frozen=True)
class Unreadable:
    """A counted result with a number but no unit the service can read."""
    name: str
    when: datetime

    def label(self) -> str:
        return f"a {self.name} of {self.when.date().isoformat()} could not be read (no unit)"


def lab_values(observations: Iterable[dict], knowledge: Knowledge) -> dict[str, list[LabValue]]:
    """Usable values by lab name, most recent first (ties: lowest first)."""
    return read_labs(observations, knowledge)[0]


def read_labs(observations: Iterable[dict], knowledge: Knowledge
              ) -> tuple[dict[str, list[LabValue]], dict[str, Unreadable]]:
    """The usable values by lab name, most recent first (ties: lowest first), and the latest
    unreadable result of each lab."""
    found: dict[str, list[LabValue]] = {}
    unreadable: dict[str, Unreadable] = {}
    for observation in observations:
        value = lab_value(observation, knowledge)
        if isinstance(value, LabValue):
            found.setdefault(value.name, []).append(value)
        elif value is not None and (value.name not in unreadable or value.when > unreadable[value.name].when):
            unreadable[value.name] = value
    for values in found.values():
        values.sort(key=lambda v: (-v.when.timestamp(), v.value))
    return found, unreadable


def lab_value(observation: dict, knowledge: Knowledge) -> LabValue | Unreadable | None:
    if observation.get("status") not in knowledge["observation_status"]["counted"]:
        return None
    name = _lab_name(observation, knowledge)
    quantity = observation.get("valueQuantity")
    when = observation_time(observation)
    if not name or not isinstance(quantity, dict) or when is None:
        return None
    value = as_number(quantity.get("value"))
    if value is None:
        return None
    units = knowledge.lab_units[name]
    factor = units.get(quantity_unit(quantity, units))
    if factor is None:
        return Unreadable(name, when)
    lab = knowledge["labs"][name]
    # Rounded to the reporting precision so 1.7 mg/dL compares as 0.70 mmol/L, not 0.699.
    canonical = round(value * factor, lab["round_to"])
    comparator = quantity.get("comparator")
    reported_as = f"{comparator}{canonical:g}" if comparator in ("<", "<=", ">=", ">") else ""
    step = lab.get("comparator_step", 10 ** -lab["round_to"])
    canonical = _nearest_possible(canonical, comparator, step, lab["round_to"])
    return LabValue(name, canonical, lab["canonical_unit"], when, reported_as)


def _nearest_possible(value: float, comparator, step: float, decimals: int) -> float:
    """'>N' is read as N plus one step (by default the reporting precision), '<N' as N minus
    one; '>=N' / '<=N' as N."""
    shift = {">": step, "<": -step}.get(comparator, 0.0)
    return round(value + shift, decimals)


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
