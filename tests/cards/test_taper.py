"""The taper plan (rules.md): one MedicationRequest, one dosageInstruction per step."""
from datetime import date

import pytest

from cards.dose import Strength, daily_dose, product_strength
from cards.knowledge import load_knowledge
from cards.taper import taper_doses, taper_plan
from service.demo import render_markdown  # the demo page's CommonMark with GFM tables

from fhircheck import validate
from test_dose_writer import TAB5, TAB10, TAB20, draft, product

K = load_knowledge()


def steps_of(resource, stu3=False):
    """{sequence: (mg/day, boundsDuration days or None)} read back from the written resource."""
    strength = product_strength([resource["medicationCodeableConcept"]], K)
    by_sequence = {}
    for instruction in resource["dosageInstruction"]:
        quantity = instruction["doseQuantity"] if stu3 else instruction["doseAndRate"][0]["doseQuantity"]
        value = quantity["value"] * (strength.mg if quantity["code"] == "{pill}" else 1)
        repeat = instruction["timing"]["repeat"]
        mg, bounds = by_sequence.get(instruction["sequence"], (0, None))
        by_sequence[instruction["sequence"]] = (mg + value * repeat["frequency"],
                                                (repeat.get("boundsDuration") or {}).get("value"))
    return by_sequence


def test_steps_10_above_30_then_5_and_the_first_cut_at_once():
    assert taper_doses(60, 0, K) == [50, 40, 30, 25, 20, 15, 10, 5]
    assert taper_doses(35, 0, K) == [25, 20, 15, 10, 5]  # 35 -> 25 (above 30: 10 mg/day)
    assert taper_doses(22, 0, K) == [15, 10, 5]  # 22 - 5 = 17, rounded down to 15
    assert taper_doses(60, 15, K) == [50, 40, 30, 25, 20, 15]
    assert taper_doses(5, 0, K) == []


def test_a_stop_ends_on_the_lowest_dose_with_no_zero_step():
    request = draft(1, frequency=3, medication=product(20)) | {"status": "stopped",
                                                             "statusReason": {"text": "stop"}}
    plan = taper_plan(request, 60, 0, TAB20, K, continuing=False)
    steps = steps_of(plan.resource)
    assert list(steps) == list(range(1, 9))
    assert [mg for mg, _ in steps.values()] == [50, 40, 30, 25, 20, 15, 10, 5]
    assert all(days == 3 for _, days in steps.values())
    assert plan.resource["status"] == "draft" and plan.resource["intent"] == "order"
    assert plan.resource["id"] == "draft-1" and "statusReason" not in plan.resource
    assert [s.days for s in plan.steps] == [3] * 8
    assert "from 60 mg/day: 50, 40, 30, 25, 20, 15, 10, 5 mg/day, 3 days each, then stop (from day 25)" \
        in plan.description
    validate(plan.resource)


def test_a_continuing_draft_ends_on_its_dose_with_no_bounds():
    plan = taper_plan(draft(1, frequency=3, medication=product(5)), 40, 15, TAB5, K, continuing=True)
    steps = steps_of(plan.resource)
    assert steps == {1: (30, 3), 2: (25, 3), 3: (20, 3), 4: (15, None)}
    assert plan.steps[-1].days is None
    assert "from 40 mg/day: 30, 25, 20 mg/day, 3 days each, then 15 mg/day from day 10 on" in plan.description
    assert "from day 10 on" in plan.table()


def test_one_product_for_the_whole_plan():
    # 40 mg/day on 20 mg tablets: the 30 and 25 mg/day steps need 5 mg tablets, so every step uses them.
    plan = taper_plan(draft(1, frequency=2, medication=product(20)), 40, 0, TAB20, K, continuing=False)
    assert plan.resource["medicationCodeableConcept"]["coding"][0]["code"] == "430902"
    assert "switched to baclofen 5 mg tablet" in plan.description
    # A taper 40 -> 30 mg/day that continues at 30 is whole 10 mg tablets: the product is kept.
    kept = taper_plan(draft(1, frequency=2, medication=product(10)), 40, 30, TAB10, K, continuing=True)
    assert kept.resource["medicationCodeableConcept"]["coding"][0]["code"] == "197391"


def test_unequal_steps_share_their_sequence():
    plan = taper_plan(draft(1, frequency=3, medication=product(5)), 60, 0, TAB5, K, continuing=False)
    first = [i for i in plan.resource["dosageInstruction"] if i["sequence"] == 1]
    assert [i["timing"]["repeat"]["when"] for i in first] == [["MORN"], ["AFT"], ["EVE"]]
    assert [i["doseAndRate"][0]["doseQuantity"]["value"] for i in first] == [3, 3, 4]  # 15, 15, 20 mg


def test_the_table_shows_every_step_and_the_stop():
    plan = taper_plan(draft(1, frequency=3, medication=product(5)), 30, 0, TAB5, K, continuing=False)
    table = plan.table().splitlines()
    assert table[0] == "| Step | Days | Daily dose | How |"
    assert table[2] == "| 1 | 1-3 | 25 mg/day | 5 mg morning, 10 mg afternoon, 10 mg evening |"
    assert table[-1] == "| | from day 16 | 0 | stop |"
    assert len(table) == 2 + 5 + 1


def test_nothing_to_taper():
    assert taper_plan(draft(medication=product(5)), 5, 0, TAB5, K, continuing=False) is None
    assert taper_plan(draft(medication=product(5)), 20, 20, TAB5, K, continuing=True) is None


def test_stu3_taper_validates():
    plan = taper_plan(draft(1, "{pill}", 3, stu3=True, medication=product(10)), 60, 0, TAB10, K,
                      continuing=False, stu3=True)
    validate(plan.resource, "STU3")
    assert steps_of(plan.resource, stu3=True)[1] == (50, 3)


def test_a_draft_without_dosage_takes_the_default_frequency():
    request = draft(medication=product(10))
    del request["dosageInstruction"]
    plan = taper_plan(request, 30, 0, TAB10, K, continuing=False)
    validate(plan.resource)
    assert steps_of(plan.resource)[1][0] == 25


@pytest.mark.parametrize("d0", range(10, 85, 5))
@pytest.mark.parametrize("target", [0, 5, 10, 15, 20, 30])
@pytest.mark.parametrize("strength, medication", [(TAB5, product(5)), (TAB10, product(10)),
                                                  (TAB20, product(20)), (None, {"text": "baclofen"})])
@pytest.mark.parametrize("stu3", [False, True])
def test_every_taper_is_valid_whole_tablets_and_ends_right(d0, target, strength, medication, stu3):
    continuing = target > 0
    plan = taper_plan(draft(1, "{pill}", 3, stu3, medication), d0, target, strength, K, continuing,
                      stu3=stu3)
    if target >= d0:
        assert plan is None
        return
    validate(plan.resource, "STU3" if stu3 else "R4")
    doses = [step.daily_mg for step in plan.steps]
    assert doses == sorted(doses, reverse=True) and doses[0] < d0
    assert all(dose % 5 == 0 and dose > 0 for dose in doses)
    assert doses[-1] == (target if continuing else 5)
    assert all(d0_ - dose <= 10 for d0_, dose in zip([d0, *doses], doses))
    for instruction in plan.resource["dosageInstruction"]:
        quantity = instruction["doseQuantity"] if stu3 else instruction["doseAndRate"][0]["doseQuantity"]
        assert quantity["code"] == "mg" or float(quantity["value"]).is_integer()
    written_strength = product_strength([plan.resource["medicationCodeableConcept"]], K)
    first_step = {"dosageInstruction": [i for i in plan.resource["dosageInstruction"] if i["sequence"] == 1]}
    assert daily_dose(first_step, written_strength, K) == doses[0]


def test_the_steps_count_from_today_when_the_stop_order_is_older():
    stop = draft(1, frequency=3, medication=product(20)) | {"status": "stopped", "authoredOn": "2024-12-01"}
    plan = taper_plan(stop, 60, 0, TAB20, K, continuing=False, start=date(2026, 11, 30))
    assert plan.resource["authoredOn"] == "2026-11-30"
    later = draft(1, frequency=3, medication=product(20)) | {"authoredOn": "2026-12-01T08:00:00Z"}
    plan = taper_plan(later, 60, 0, TAB20, K, continuing=False, start=date(2026, 11, 30))
    assert plan.resource["authoredOn"] == "2026-12-01T08:00:00Z"


def test_the_schedule_renders_as_a_table():
    plan = taper_plan(draft(1, frequency=3, medication=product(5)), 30, 0, TAB5, K, continuing=False)
    html = render_markdown(f"Suggested taper:\n\n{plan.table()}")
    assert html.count("<tr>") == 1 + len(plan.steps) + 1  # header, steps, stop
    assert "<td>5 mg morning, 10 mg afternoon, 10 mg evening</td>" in html
