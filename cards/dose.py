"""Daily dose in mg/day of a MedicationRequest (R4 or STU3); writing one is cards/dose_writer.py.

Any part that cannot be read (unit, strength, frequency) makes the dose unknown (None):
dose rules then stay silent rather than guess.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from .codes import coded, words
from .dates import parse_when
from .knowledge import Knowledge, normalize_unit

_PER_ML = re.compile(r"(\d+(?:\.\d+)?)\s*mg\s*/\s*(\d+(?:\.\d+)?)?\s*ml")
_MG = re.compile(r"(\d+(?:\.\d+)?)\s*mg\b")


@dataclass(frozen=True)
class Strength:
    mg: float  # per tablet, or per mL when per_ml
    per_ml: bool


def product_strength(concepts: Iterable[dict], knowledge: Knowledge,
                     medication: dict | None = None) -> Strength | None:
    """From the RxNorm product table, else Medication.ingredient.strength, else the
    'N MG' / 'N MG/ML' of the product's name."""
    concepts = [c for c in concepts if isinstance(c, dict)]
    for concept in concepts:
        for pair in coded(concept):
            if pair in knowledge.products:
                return Strength(*knowledge.products[pair])
    from_ingredient = ingredient_strength(medication, knowledge)
    if from_ingredient:
        return from_ingredient
    for concept in concepts:
        text = words(concept)
        match = _PER_ML.search(text)
        if match and float(match[1]) > 0 and float(match[2] or 1) > 0:
            return Strength(float(match[1]) / float(match[2] or 1), True)
        match = _MG.search(text)
        if match and float(match[1]) > 0:
            return Strength(float(match[1]), False)
    return None


def ingredient_strength(medication: dict | None, knowledge: Knowledge) -> Strength | None:
    """Medication.ingredient[].strength (STU3: amount): mg per 1 tablet (a count unit) or per mL."""
    for ingredient in (medication or {}).get("ingredient") or ():
        ratio = (ingredient.get("strength") or ingredient.get("amount")) if isinstance(ingredient, dict) else None
        if not isinstance(ratio, dict):
            continue
        numerator, denominator = ratio.get("numerator"), ratio.get("denominator")
        if not isinstance(numerator, dict) or not isinstance(denominator, dict):
            continue
        mg = quantity_mg(numerator, None, knowledge)
        per = as_number(denominator.get("value", 1))
        unit = quantity_unit(denominator, knowledge.dose_units)
        if not mg or not per or per <= 0:
            continue
        if unit in knowledge.count_units:
            return Strength(mg / per, False)
        if unit in knowledge.volume_units:
            return Strength(mg / per, True)
    return None


def daily_dose(request: dict, strength: Strength | None, knowledge: Knowledge,
               as_of: datetime | None = None) -> float | None:
    """mg/day. Instructions sharing a `sequence` add up; different `sequence` values are
    consecutive steps (a taper): the step in force at `as_of`, counted from authoredOn with
    each step's timing.repeat.boundsDuration; without `as_of` (a draft) the first step."""
    instructions = request.get("dosageInstruction") or ()
    if not instructions:
        return None
    if len(instructions) == 1:  # one step: no step in force to find
        mg = instruction_daily_mg(instructions[0], strength, knowledge)
        return None if mg is None else round(0.0 + mg, 3)  # 0.0 + as the steps sum below: -0.0 is 0
    steps: dict = {}
    for instruction in instructions:
        mg = instruction_daily_mg(instruction, strength, knowledge)
        if mg is None:
            return None
        sequence = as_number(instruction.get("sequence")) or 0.0
        daily, bounds = steps.get(sequence, (0.0, None))
        steps[sequence] = (daily + mg, bounds or _bounds(instruction, knowledge))
    ordered = [steps[key] for key in sorted(steps)]
    return round(_step_in_force(ordered, parse_when(request.get("authoredOn")), as_of), 3)


def _bounds(instruction: dict, knowledge: Knowledge) -> timedelta | None:
    repeat = (instruction.get("timing") or {}).get("repeat")
    duration = repeat.get("boundsDuration") if isinstance(repeat, dict) else None
    if not isinstance(duration, dict):
        return None
    value = as_number(duration.get("value"))
    hours = knowledge.period_hours.get(duration.get("code") or duration.get("unit") or "")
    if value is None or value <= 0 or not hours:
        return None
    return timedelta(hours=value * hours)


def _step_in_force(steps: list[tuple[float, timedelta | None]], start: datetime | None,
                   as_of: datetime | None) -> float:
    if as_of is None or start is None or len(steps) == 1:
        return steps[0][0]
    for daily, bounds in steps:
        if bounds is None or as_of < start + bounds:
            return daily
        start += bounds
    return steps[-1][0]


def instruction_daily_mg(instruction: dict, strength: Strength | None,
                         knowledge: Knowledge) -> float | None:
    dose = dose_quantity(instruction)
    dose_mg = quantity_mg(dose, strength, knowledge) if dose else None
    per_day = administrations_per_day(instruction.get("timing"), knowledge)
    daily = dose_mg * per_day if dose_mg is not None and per_day is not None else None
    cap = max_per_day(instruction, strength, knowledge)
    if cap is None:
        return daily
    if daily is None:
        return cap if _as_needed(instruction) else None
    return min(daily, cap)


def _as_needed(instruction: dict) -> bool:
    return bool(instruction.get("asNeededBoolean") or instruction.get("asNeededCodeableConcept"))


def dose_quantity(instruction: dict) -> dict | None:
    """R4 doseAndRate[].doseQuantity / doseRange.high, or STU3 doseQuantity / doseRange.high."""
    holders = [instruction, *(instruction.get("doseAndRate") or ())]
    for holder in holders:
        if isinstance(holder.get("doseQuantity"), dict):
            return holder["doseQuantity"]
        high = (holder.get("doseRange") or {}).get("high")
        if isinstance(high, dict):
            return high
    return None


def quantity_unit(quantity: dict, known=()) -> str:
    """The UCUM `code`, else the `unit` text (some EHRs send only that, or a code we do not
    know beside a readable unit): the first of the two found in `known`, if given."""
    candidates = [normalize_unit(str(quantity[key])) for key in ("code", "unit") if quantity.get(key)]
    for candidate in candidates:
        if candidate in known:
            return candidate
    return candidates[0] if candidates else ""


def as_number(value) -> float | None:
    """JSON numbers (and Decimals, should a caller pass model dumps); never booleans."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    return float(value)


def quantity_mg(quantity: dict, strength: Strength | None, knowledge: Knowledge) -> float | None:
    value = as_number(quantity.get("value"))
    if value is None or value < 0:
        return None
    unit = quantity_unit(quantity, knowledge.dose_units)
    if unit in knowledge.mass_units:
        return value * knowledge.mass_units[unit]
    if strength is None:
        return None
    if unit in knowledge.count_units and not strength.per_ml:
        return value * strength.mg
    if unit in knowledge.volume_units and strength.per_ml:
        return value * strength.mg
    return None


def administrations_per_day(timing: dict | None, knowledge: Knowledge) -> float | None:
    """From timing.repeat (frequencyMax wins: the most the order allows), else timing.code."""
    if not isinstance(timing, dict):
        return None
    from_repeat = _repeat_per_day(timing.get("repeat"), knowledge)
    if from_repeat is not None:
        return from_repeat
    code = timing.get("code")
    for _, value in coded(code):
        if value.upper() in knowledge.timing_codes:
            return knowledge.timing_codes[value.upper()]
    text = (code or {}).get("text", "") if isinstance(code, dict) else ""
    return knowledge.timing_codes.get(text.strip().upper())


def _repeat_per_day(repeat: dict | None, knowledge: Knowledge) -> float | None:
    if not isinstance(repeat, dict):
        return None
    frequency = as_number(repeat.get("frequencyMax")) or as_number(repeat.get("frequency")) or 1
    period, unit = as_number(repeat.get("period")), repeat.get("periodUnit")
    if period and period > 0 and unit in knowledge.period_hours:
        return frequency * 24.0 / (period * knowledge.period_hours[unit])
    times_a_day = len(repeat.get("timeOfDay") or ()) or len(repeat.get("when") or ())
    if times_a_day and period is None:
        return float(frequency * times_a_day)
    return None


def max_per_day(instruction: dict, strength: Strength | None, knowledge: Knowledge) -> float | None:
    ratios = instruction.get("maxDosePerPeriod")
    ratios = ratios if isinstance(ratios, list) else [ratios] if ratios else []
    caps = [_ratio_per_day(ratio, strength, knowledge) for ratio in ratios]
    caps = [cap for cap in caps if cap is not None]
    return min(caps) if caps else None


def _ratio_per_day(ratio: dict, strength: Strength | None, knowledge: Knowledge) -> float | None:
    numerator, denominator = ratio.get("numerator"), ratio.get("denominator")
    if not isinstance(numerator, dict) or not isinstance(denominator, dict):
        return None
    mg = quantity_mg(numerator, strength, knowledge)
    hours = knowledge.period_hours.get(quantity_unit(denominator, knowledge.period_hours))
    span = as_number(denominator.get("value", 1))
    if mg is None or not hours or not span or span < 0:
        return None
    return mg * 24.0 / (span * hours)
