"""The taper plan (rules.md "The taper plan"): one MedicationRequest, one step per sequence.

From D0 the daily dose falls by the taper step (10 mg/day while above 30 mg/day, then
5 mg/day) every taper interval (3 days); step 1 is already one step down. A stop ends
with the lowest dose (no zero step); a continuing draft ends on its target with no
boundsDuration. Every step is written as cards/dose_writer.py writes a dose, in one
product for the whole plan. The numbers live in the knowledge file ([taper], "check").
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .dates import parse_date
from .dose import Strength
from .dose_writer import (DosageWriter, choose_product, doses_text, floor_daily, fmt, keeps_timing,
                          medication_name, ordered_administrations, plan_regimen, product_note)
from .knowledge import Knowledge


@dataclass(frozen=True)
class TaperStep:
    sequence: int
    daily_mg: float
    days: int | None  # None: the last step of a continuing draft (it goes on)
    how: str  # "10 mg morning, 15 mg evening"


@dataclass(frozen=True)
class TaperPlan:
    resource: dict
    description: str
    steps: list[TaperStep]

    def table(self) -> str:
        """The schedule as a Markdown table for the card's detail."""
        rows = ["| Step | Days | Daily dose | How |", "|---|---|---|---|"]
        day = 1
        for step in self.steps:
            days = f"{day}-{day + step.days - 1}" if step.days else f"from day {day} on"
            rows.append(f"| {step.sequence} | {days} | {fmt(step.daily_mg)} mg/day | {step.how} |")
            day += step.days or 0
        if self.steps[-1].days:
            rows.append(f"| | from day {day} | 0 | stop |")
        return "\n".join(rows)

    @property
    def total_days(self) -> int:
        return sum(step.days or 0 for step in self.steps)


def taper_doses(d0: float, target: float, knowledge: Knowledge) -> list[float]:
    """The daily dose of each step from the first reduction down to the target (or, for a
    stop, to the lowest dose above 0), each a multiple of 5 mg/day."""
    target = max(floor_daily(target, knowledge), 0)
    doses = []
    dose = floor_daily(d0 - _step(d0, knowledge), knowledge)
    while dose > target:
        doses.append(dose)
        dose = floor_daily(dose - _step(dose, knowledge), knowledge)
    if target > 0:
        doses.append(target)
    return doses


def _step(dose: float, knowledge: Knowledge) -> float:
    taper = knowledge["taper"]
    return taper["step_above_threshold_mg"] if dose > taper["threshold_mg"] else taper["step_mg"]


def taper_plan(request: dict, d0: float, target: float, strength: Strength | None,
               knowledge: Knowledge, continuing: bool, *, stu3: bool | None = None,
               name: str | None = None, start: date | None = None) -> TaperPlan | None:
    """The draft rewritten as a taper from `d0` to `target` (0 for a stop); None when there is
    nothing to taper (D0 one step from the target) or no product can make every step.
    `start`: the day step 1 begins; an older authoredOn (a stop order is often the active
    order itself) moves to it, since the steps are counted from authoredOn."""
    doses = taper_doses(d0, target if continuing else 0, knowledge)
    if not doses or d0 <= doses[0]:
        return None
    product = choose_product(doses, strength, knowledge)
    if product is None:
        return None
    ordered = ordered_administrations(request, knowledge)
    regimens = [plan_regimen(dose, product.unit_mg, ordered, knowledge) for dose in doses]
    if any(r is None for r in regimens):
        return None
    interval = knowledge.value("taper", "interval_days")
    writer = DosageWriter(request, product, knowledge, stu3)
    instructions, steps = [], []
    for sequence, regimen in enumerate(regimens, start=1):
        days = None if continuing and sequence == len(regimens) else interval
        instructions += writer.instructions(regimen, keeps_timing(regimen, ordered), sequence, days)
        steps.append(TaperStep(sequence, regimen.daily, days, doses_text(regimen)))
    resource = writer.resource(instructions)
    resource.update(status="draft", intent="order")
    if start and (parse_date(resource.get("authoredOn")) or date.min) < start:
        resource["authoredOn"] = start.isoformat()
    resource.pop("statusReason", None)
    plan = TaperPlan(resource, "", steps)
    description = _description(name or medication_name(request), d0, plan, knowledge) + product_note(product)
    return TaperPlan(resource, description + ".", steps)


def _description(name: str, d0: float, plan: TaperPlan, knowledge: Knowledge) -> str:
    """'Taper X from 60 mg/day: 50, 40, ... 5 mg/day, 3 days each, then stop (from day 25)'."""
    interval = fmt(knowledge.value("taper", "interval_days"))
    bounded = [fmt(step.daily_mg) for step in plan.steps if step.days]
    last = plan.steps[-1]
    end = (f"then stop (from day {plan.total_days + 1})" if last.days
           else f"then {fmt(last.daily_mg)} mg/day from day {plan.total_days + 1} on")
    if not bounded:
        return f"Change {name} from {fmt(d0)} to {fmt(last.daily_mg)} mg/day"
    return f"Taper {name} from {fmt(d0)} mg/day: {', '.join(bounded)} mg/day, {interval} days each, {end}"
