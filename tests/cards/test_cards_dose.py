"""Daily dose (mg/day) of every dose form in rules.md (writing one: test_dose_writer.py)."""
import pytest

from cards.dose import Strength, daily_dose, product_strength
from cards.knowledge import load_knowledge

K = load_knowledge()
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TAB10 = Strength(10.0, False)


def quantity(value, code=None, unit=None):
    q = {"value": value}
    if code:
        q.update(system="http://unitsofmeasure.org", code=code)
    if unit:
        q["unit"] = unit
    return q


def per_day(frequency=1, period=1, unit="d", **more):
    return {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit, **more}}


def r4(dose, timing, **more):
    return {"dosageInstruction": [{"timing": timing, "doseAndRate": [{"doseQuantity": dose}], **more}]}


def stu3(dose, timing, **more):
    return {"dosageInstruction": [{"timing": timing, "doseQuantity": dose, **more}]}


def test_sandbox_pill_times_rxnorm_strength():
    concept = {"coding": [{"system": RXNORM, "code": "197392", "display": "Baclofen 20 MG Oral Tablet"}]}
    strength = product_strength([concept], K)
    assert daily_dose(r4(quantity(3, "{pill}"), per_day(1)), strength, K) == 60


@pytest.mark.parametrize("request_, expected", [
    (r4(quantity(10, "mg"), per_day(3)), 30),
    (r4(quantity(0.01, "g"), per_day(2)), 20),
    (stu3(quantity(5, "mg"), per_day(3)), 15),
    (r4(quantity(2, "{tbl}"), per_day(2)), 40),
    (r4(quantity(1, "TAB"), per_day(1, 8, "h")), 30),
    (r4(quantity(1, unit="tablet"), per_day(2)), 20),
    (r4(quantity(10, "mg"), per_day(7, 1, "wk")), 10),
    (r4(quantity(10, "mg"), {"code": {"coding": [{"code": "TID"}]}}), 30),
    (r4(quantity(10, "mg"), {"code": {"coding": [{"code": "Q6H"}]}}), 40),
    (r4(quantity(10, "mg"), {"code": {"coding": [{"code": "QHS"}]}}), 10),
    (r4(quantity(5, "mg"), {"code": {"text": "bid"}}), 10),
    (r4(quantity(10, "mg"), {"repeat": {"when": ["MORN", "HS"]}}), 20),
    ({"dosageInstruction": [{"timing": per_day(3), "doseAndRate": [{"doseRange": {
        "low": quantity(5, "mg"), "high": quantity(10, "mg")}}]}]}, 30),
    (stu3(None, per_day(2)) | {"dosageInstruction": [{"timing": per_day(2), "doseRange": {
        "high": quantity(20, "mg")}}]}, 40),
])
def test_daily_dose_forms(request_, expected):
    assert daily_dose(request_, TAB10, K) == pytest.approx(expected)


def test_as_needed_uses_frequency_max_and_is_capped():
    timing = per_day(1, 6, "h", frequencyMax=2)  # 1-2 every 6 h -> up to 8 a day
    cap = {"numerator": quantity(40, "mg"), "denominator": quantity(1, "d")}
    request = r4(quantity(10, "mg"), timing, asNeededBoolean=True, maxDosePerPeriod=cap)
    assert daily_dose(request, None, K) == 40
    assert daily_dose(r4(quantity(10, "mg"), timing, asNeededBoolean=True), None, K) == 80


def test_as_needed_without_frequency_takes_the_cap():
    cap = {"numerator": quantity(3, "{tbl}"), "denominator": quantity(1, "d")}
    request = {"dosageInstruction": [{"asNeededBoolean": True, "maxDosePerPeriod": cap,
                                      "doseAndRate": [{"doseQuantity": quantity(1, "{tbl}")}]}]}
    assert daily_dose(request, TAB10, K) == 30


def test_oral_solution_ml_times_concentration():
    concept = {"coding": [{"system": RXNORM, "code": "250976"}]}
    strength = product_strength([concept], K)
    assert daily_dose(r4(quantity(10, "mL"), per_day(3)), strength, K) == 30
    by_name = product_strength([{"text": "Baclofen 5 MG/ML Oral Suspension"}], K)
    assert daily_dose(r4(quantity(2, "mL"), per_day(2)), by_name, K) == 20


def test_strength_from_display_when_the_code_is_local():
    strength = product_strength([{"coding": [{"system": "urn:local", "code": "X", "display": "BACLOFEN 10MG TAB"}]}], K)
    assert strength == Strength(10.0, False)


def test_concurrent_instructions_add_and_a_draft_taper_reads_its_first_step():
    morning = {"timing": per_day(1), "doseAndRate": [{"doseQuantity": quantity(10, "mg")}]}
    night = {"timing": per_day(1), "doseAndRate": [{"doseQuantity": quantity(20, "mg")}]}
    assert daily_dose({"dosageInstruction": [morning, night]}, None, K) == 30
    taper = [dict(night, sequence=2), dict(morning, sequence=1), dict(morning, sequence=1)]
    assert daily_dose({"dosageInstruction": taper}, None, K) == 20


def _step(sequence: int, mg: float, days: int | None) -> dict:
    repeat = {"frequency": 1, "period": 1, "periodUnit": "d"}
    if days:
        repeat["boundsDuration"] = {"value": days, "unit": "days", "system": "http://unitsofmeasure.org",
                                    "code": "d"}
    return {"sequence": sequence, "timing": {"repeat": repeat},
            "doseAndRate": [{"doseQuantity": quantity(mg, "mg")}]}


@pytest.mark.parametrize("days_since_authored, expected", [
    (0, 40), (2.9, 40), (3, 30), (5.9, 30), (6, 20), (60, 20)])
def test_an_order_in_force_reads_the_taper_step_of_today(days_since_authored, expected):
    from datetime import datetime, timedelta, timezone
    authored = datetime(2026, 11, 1, tzinfo=timezone.utc)
    request = {"authoredOn": authored.isoformat(),
               "dosageInstruction": [_step(1, 40, 3), _step(2, 30, 3), _step(3, 20, None)]}
    as_of = authored + timedelta(days=days_since_authored)
    assert daily_dose(request, None, K, as_of) == expected


def test_strength_from_medication_ingredient():
    medication = {"resourceType": "Medication", "code": {"text": "Local baclofen"},
                  "ingredient": [{"itemCodeableConcept": {"text": "baclofen"},
                                  "strength": {"numerator": quantity(20, "mg"),
                                               "denominator": quantity(1, "{tbl}")}}]}
    assert product_strength([medication["code"]], K, medication) == Strength(20.0, False)
    liquid = {"ingredient": [{"strength": {"numerator": quantity(10, "mg"),
                                           "denominator": quantity(5, "mL")}}]}
    assert product_strength([{"text": "Baclofen 5 MG/ML"}], K, liquid) == Strength(2.0, True)


@pytest.mark.parametrize("request_, strength", [
    (r4(quantity(2, "{pill}"), per_day(3)), None),  # count without a known strength
    (r4(quantity(2, "mL"), per_day(3)), TAB10),  # volume of a tablet
    (r4(quantity(10, "mg"), None), None),  # no timing
    (r4(quantity(10, "mg"), per_day(1, 1, "a")), None),  # unknown period unit
    (r4(quantity(10, "furlong"), per_day(1)), None),
    ({"dosageInstruction": [{"text": "as directed"}]}, None),
    ({}, None),
])
def test_unknown_parts_make_the_dose_unknown(request_, strength):
    assert daily_dose(request_, strength, K) is None
