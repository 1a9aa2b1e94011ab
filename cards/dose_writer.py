"""Writing a daily dose into a draft MedicationRequest (rules.md "The dose a suggestion writes").

Daily doses are multiples of 5 mg (rounded down, never up), each administration at most
20 mg, 1-4 administrations a day, whole tablets (or liquid volumes in 0.5 mL steps). The
ordered product is kept when it can make every dose, else the largest generic tablet of
the product table that can is written instead and the description names it. The numbers
live in the knowledge file ([dose_writing], [products]).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from .dose import Strength, administrations_per_day, dose_quantity, quantity_unit
from .knowledge import Knowledge

FREQUENCY_WORDS = {1: "once daily", 2: "twice daily", 3: "three times daily", 4: "four times daily"}
WHEN_WORDS = {"MORN": "morning", "AFT": "afternoon", "EVE": "evening", "HS": "at bedtime"}
_EPSILON = 1e-6


@dataclass(frozen=True)
class WrittenOrder:
    resource: dict  # the whole MedicationRequest (draft id and other fields kept)
    description: str  # the suggestion action's description
    how: str  # "10 mg three times daily (30 mg/day)"


@dataclass(frozen=True)
class Product:
    """What the written doses are counted in."""
    unit_mg: float  # the smallest whole amount: one tablet, 0.5 mL of a liquid, or the grain
    strength: Strength | None  # None: the strength is unknown (the pharmacist chooses)
    switched_to: dict | None = None  # the generic tablet (knowledge products.generic_tablets)

    @property
    def tablet(self) -> bool:
        return self.strength is not None and not self.strength.per_ml


@dataclass(frozen=True)
class Regimen:
    """One day's administrations in mg, in the order of the day (equal, or the larger later)."""
    doses: tuple[float, ...]
    when: tuple[str, ...] = ()  # timing.repeat.when of each unequal dose

    @property
    def daily(self) -> float:
        return sum(self.doses)

    @property
    def times(self) -> int:
        return len(self.doses)

    @property
    def equal(self) -> bool:
        return len(set(self.doses)) == 1


# --- the numbers: which product, how many administrations ---------------------------------


def floor_daily(daily_mg: float, knowledge: Knowledge) -> float:
    """Rounded down to the daily multiple (5 mg): a suggestion never raises a dose by rounding."""
    step = knowledge.value("dose_writing", "daily_multiple_mg")
    return math.floor(daily_mg / step + _EPSILON) * step


def choose_product(dailies: Iterable[float], strength: Strength | None,
                   knowledge: Knowledge) -> Product | None:
    """The ordered product when it makes every daily dose, else the largest generic tablet
    that does; None when none can (e.g. above 4 x 20 mg)."""
    return _choose_product(tuple(dailies), strength, knowledge)


@lru_cache(maxsize=4096, typed=True)
def _choose_product(dailies: tuple[float, ...], strength: Strength | None,
                    knowledge: Knowledge) -> Product | None:
    if strength is None:
        grain = knowledge.value("dose_writing", "daily_multiple_mg")
        product = Product(grain, None)
        return product if all(_makes(grain, d, knowledge) for d in dailies) else None
    ordered = Product(_unit_mg(strength, knowledge), strength)
    if all(_makes(ordered.unit_mg, d, knowledge) for d in dailies):
        return ordered
    generics = sorted(knowledge["products"]["generic_tablets"], key=lambda t: -t["mg"])
    for tablet in generics:
        if all(_makes(tablet["mg"], d, knowledge) for d in dailies):
            return Product(tablet["mg"], Strength(float(tablet["mg"]), False), tablet)
    return None


def _unit_mg(strength: Strength, knowledge: Knowledge) -> float:
    if strength.per_ml:
        return strength.mg * knowledge.value("dose_writing", "liquid_step_ml")
    return strength.mg


def _units(mg: float, unit_mg: float) -> int | None:
    """mg as a whole number of units, or None when it is not one."""
    count = mg / unit_mg
    return round(count) if abs(count - round(count)) < _EPSILON else None


def _max_units_per_dose(unit_mg: float, knowledge: Knowledge) -> int:
    return math.floor(knowledge.value("dose_writing", "max_single_dose_mg") / unit_mg + _EPSILON)


def _makes(unit_mg: float, daily: float, knowledge: Knowledge) -> bool:
    units = _units(daily, unit_mg)
    most = _max_units_per_dose(unit_mg, knowledge) * knowledge.value("dose_writing", "max_administrations")
    return units is not None and 0 < units <= most


# Pure functions of a few numbers, asked again for every step of every taper: remembered.
@lru_cache(maxsize=4096, typed=True)
def plan_regimen(daily: float, unit_mg: float, ordered_times: float,
                 knowledge: Knowledge) -> Regimen | None:
    """The ordered frequency when the dose divides into equal whole units of at most 20 mg;
    else the nearest frequency that does (a tie goes to the higher); else unequal doses at
    the ordered frequency (raised to keep each dose at most 20 mg), remainder on the later."""
    units = _units(daily, unit_mg)
    if not units:
        return None
    per_dose_max = _max_units_per_dose(unit_mg, knowledge)
    most = knowledge.value("dose_writing", "max_administrations")
    equal = [n for n in range(1, most + 1) if units % n == 0 and units // n <= per_dose_max]
    if equal:
        times = min(equal, key=lambda n: (abs(n - ordered_times), -n))
        return Regimen((units // times * unit_mg,) * times)
    times = max(min(max(round(ordered_times), 1), most), math.ceil(units / per_dose_max))
    times = min(times, most, units)
    base, extra = divmod(units, times)
    counts = [base] * (times - extra) + [base + 1] * extra
    if max(counts) > per_dose_max:
        return None
    when = tuple(knowledge.value("dose_writing", f"when_{times}"))
    return Regimen(tuple(count * unit_mg for count in counts), when)


def ordered_administrations(request: dict, knowledge: Knowledge) -> float:
    """Administrations a day of the draft's first step (instructions sharing its sequence)."""
    instructions = [i for i in request.get("dosageInstruction") or () if isinstance(i, dict)]
    if instructions:
        first = instructions[0].get("sequence")
        per_day = [administrations_per_day(i.get("timing"), knowledge)
                   for i in instructions if i.get("sequence") == first]
        if per_day and all(p for p in per_day):
            return sum(per_day)
    return knowledge.value("dose_writing", "default_administrations")


# --- writing the resource ---------------------------------------------------------------


def write_daily_dose(request: dict, daily_mg: float, strength: Strength | None,
                     knowledge: Knowledge, *, stu3: bool | None = None,
                     name: str | None = None) -> WrittenOrder | None:
    """A copy of the draft giving `daily_mg` (rounded down to a multiple of 5), or None when
    no whole-tablet regimen of 1-4 doses of at most 20 mg can give it."""
    daily = floor_daily(daily_mg, knowledge)
    product = choose_product([daily], strength, knowledge) if daily > 0 else None
    if product is None:
        return None
    ordered = ordered_administrations(request, knowledge)
    regimen = plan_regimen(daily, product.unit_mg, ordered, knowledge)
    if regimen is None:
        return None
    writer = DosageWriter(request, product, knowledge, stu3)
    resource = writer.resource(writer.instructions(regimen, keep_timing=keeps_timing(regimen, ordered)))
    how = regimen_text(regimen)
    changed = "" if abs(regimen.times - ordered) < _EPSILON else (
        f" (was {frequency_words(ordered)}: so that each dose is whole tablets of at most"
        f" {knowledge.value('dose_writing', 'max_single_dose_mg'):g} mg)")
    description = (f"Change {name or medication_name(request)} to {how}{changed}"
                   f"{product_note(product)}.")
    return WrittenOrder(resource, description, how)


def keeps_timing(regimen: Regimen, ordered: float) -> bool:
    """The draft's own timing is kept when the regimen is equal doses at its frequency."""
    return regimen.equal and abs(regimen.times - ordered) < _EPSILON


class DosageWriter:
    """Writes regimens as Dosage elements in the draft's FHIR version, for one product."""

    def __init__(self, request: dict, product: Product, knowledge: Knowledge, stu3: bool | None):
        self.request = request
        self.product = product
        self.knowledge = knowledge
        instructions = [i for i in request.get("dosageInstruction") or () if isinstance(i, dict)]
        self.template = instructions[0] if instructions else {}
        self.stu3 = _is_stu3(instructions) if stu3 is None else stu3
        self.counted_in = self._counted_in(dose_quantity(self.template) if self.template else None)
        # A draft that is already a taper: its first step's length must not bound a new dose.
        self.steps_in_template = len({i.get("sequence") for i in instructions}) > 1
        # Its timing stands for the ordered frequency only when it is alone in its step.
        first_step = [i for i in instructions if i.get("sequence") == self.template.get("sequence")]
        self.timing_reusable = len(first_step) == 1
        # What every written instruction keeps of the template: all but the dose and timing.
        self.kept = {key: value for key, value in self.template.items() if key not in _DOSE_KEYS}
        if not self.stu3:
            first_rate = (self.template.get("doseAndRate") or [{}])[0]
            self.kept_rate = {k: v for k, v in first_rate.items() if k == "type"}

    def resource(self, instructions: list[dict]) -> dict:
        # A shallow copy: only top-level elements are replaced; the others are shared with
        # the draft, and nothing in the engine or the service changes them.
        resource = dict(self.request)
        resource["dosageInstruction"] = instructions
        if self.product.switched_to:
            _switch_medication(resource, self.product.switched_to, self.knowledge)
        return resource

    def instructions(self, regimen: Regimen, keep_timing: bool = False, sequence: int | None = None,
                     bounds_days: int | None = None) -> list[dict]:
        if regimen.equal:
            kept = copy_json(self.template.get("timing")) if keep_timing and self.timing_reusable else None
            timing = kept or _daily_timing(regimen.times)
            return [self._instruction(regimen.doses[0], timing, regimen, sequence, bounds_days)]
        shared = sequence or self.template.get("sequence") or 1
        return [self._instruction(dose, _daily_timing(1, code), regimen, shared, bounds_days,
                                  f"{fmt(dose)} mg {WHEN_WORDS.get(code, code)}")
                for dose, code in zip(regimen.doses, regimen.when)]

    def _instruction(self, dose_mg: float, timing: dict, regimen: Regimen, sequence: int | None,
                     bounds_days: int | None, text: str | None = None) -> dict:
        instruction = dict(self.kept)
        if sequence is not None:
            instruction["sequence"] = sequence
        repeat = timing.get("repeat")
        if bounds_days is not None or self.steps_in_template:
            for bounds in ("boundsDuration", "boundsPeriod", "boundsRange"):
                (repeat or {}).pop(bounds, None)
        if bounds_days is not None:
            timing.setdefault("repeat", {})["boundsDuration"] = _days(bounds_days, self.knowledge)
        instruction["timing"] = timing
        instruction["text"] = text or regimen_text(regimen)
        quantity = self._quantity(dose_mg)
        if self.stu3:
            instruction["doseQuantity"] = quantity
        else:
            instruction["doseAndRate"] = [{**self.kept_rate, "doseQuantity": quantity}]
        if "maxDosePerPeriod" in self.template:
            instruction["maxDosePerPeriod"] = _daily_cap(regimen.daily, self.knowledge)
        return instruction

    def _counted_in(self, ordered: dict | None) -> dict | None:
        """The unit, system and code of the ordered quantity when the doses can be counted in
        it (tablets as a count, liquid in mL); None: they are written in mg."""
        unit = quantity_unit(ordered, self.knowledge.dose_units) if ordered else ""
        strength = self.product.strength
        if strength and ((self.product.tablet and unit in self.knowledge.count_units)
                         or (strength.per_ml and unit in self.knowledge.volume_units)):
            return {k: v for k, v in ordered.items() if k in ("unit", "system", "code")}
        return None

    def _quantity(self, dose_mg: float) -> dict:
        if self.counted_in is not None:
            return {"value": number(dose_mg / self.product.strength.mg), **self.counted_in}
        return mg_quantity(dose_mg, self.knowledge)


_DOSE_KEYS = frozenset({"doseAndRate", "doseQuantity", "doseRange", "rateRatio", "rateRange",
                        "rateQuantity", "maxDosePerPeriod", "timing", "text", "sequence"})


def _is_stu3(instructions: list[dict]) -> bool:
    """STU3 puts the dose directly on the Dosage; R4 inside doseAndRate."""
    return any(("doseQuantity" in i or "doseRange" in i) and "doseAndRate" not in i
               for i in instructions)


def _daily_timing(times: int, when: str | None = None) -> dict:
    repeat = {"frequency": times, "period": 1, "periodUnit": "d"}
    if when:
        repeat["when"] = [when]
    return {"repeat": repeat}


def _days(days: int, knowledge: Knowledge) -> dict:
    return {"value": days, "unit": "days", "system": knowledge.systems["ucum"], "code": "d"}


def mg_quantity(value: float, knowledge: Knowledge) -> dict:
    return {"value": number(value), "unit": "mg", "system": knowledge.systems["ucum"], "code": "mg"}


def _daily_cap(daily_mg: float, knowledge: Knowledge) -> dict:
    return {"numerator": mg_quantity(daily_mg, knowledge),
            "denominator": {"value": 1, "unit": "day", "system": knowledge.systems["ucum"], "code": "d"}}


def _switch_medication(resource: dict, tablet: dict, knowledge: Knowledge) -> None:
    reference = (resource.pop("medicationReference", None) or {}).get("reference", "")
    if reference.startswith("#"):
        contained = [c for c in resource.get("contained") or () if c.get("id") != reference[1:]]
        if contained:
            resource["contained"] = contained
        else:
            resource.pop("contained", None)
    resource["medicationCodeableConcept"] = {
        "coding": [{"system": knowledge.systems["rxnorm"], "code": tablet["rxnorm"],
                    "display": tablet["display"]}],
        "text": tablet["display"]}


# --- words ------------------------------------------------------------------------------


@lru_cache(maxsize=4096, typed=True)
def regimen_text(regimen: Regimen) -> str:
    """'10 mg three times daily (30 mg/day)' or '10 mg morning, 15 mg evening (25 mg/day)'."""
    return f"{doses_text(regimen)} ({fmt(regimen.daily)} mg/day)"


@lru_cache(maxsize=4096, typed=True)
def doses_text(regimen: Regimen) -> str:
    """'10 mg three times daily' or '10 mg morning, 15 mg evening'."""
    if regimen.equal:
        return f"{fmt(regimen.doses[0])} mg {frequency_words(regimen.times)}"
    return ", ".join(f"{fmt(dose)} mg {WHEN_WORDS.get(code, code)}"
                     for dose, code in zip(regimen.doses, regimen.when))


def product_note(product: Product) -> str:
    if product.strength is None:
        return ("; the product's strength could not be read, so the dose is written in mg and"
                " the pharmacist chooses the product")
    if product.switched_to:
        return (f"; switched to baclofen {fmt(product.switched_to['mg'])} mg tablet (whole"
                " tablets of the ordered product cannot make every dose)")
    return ""


def frequency_words(times: float) -> str:
    if float(times).is_integer() and int(times) in FREQUENCY_WORDS:
        return FREQUENCY_WORDS[int(times)]
    return f"{fmt(times)} times a day"


def medication_name(request: dict) -> str:
    concept = request.get("medicationCodeableConcept") or {}
    if concept.get("text"):
        return concept["text"]
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and coding.get("display"):
            return coding["display"]
    return "the baclofen order"


def copy_json(value):
    """Deep copy of plain JSON data (several times faster than copy.deepcopy)."""
    if isinstance(value, dict):
        return {key: copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copy_json(item) for item in value]
    return value


def number(value: float) -> int | float:
    whole = round(value)
    return int(whole) if abs(value - whole) < _EPSILON else round(value, 3)


def fmt(value: float) -> str:
    return str(number(value))
