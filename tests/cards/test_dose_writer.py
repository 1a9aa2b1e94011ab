"""The dose a suggestion writes (rules.md): whole tablets, 1-4 doses of at most 20 mg, product switch."""
import pytest

from cards.dose import Strength, daily_dose, product_strength
from cards.dose_writer import plan_regimen, write_daily_dose
from cards.knowledge import load_knowledge

from fhircheck import validate

K = load_knowledge()
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
TAB5, TAB10, TAB20 = Strength(5.0, False), Strength(10.0, False), Strength(20.0, False)
TABLET_CODES = {5: "430902", 10: "197391", 20: "197392"}


def product(tablet_mg=20, **more):
    return {"coding": [{"system": RXNORM, "code": TABLET_CODES[tablet_mg],
                        "display": f"Baclofen {tablet_mg} MG Oral Tablet"}], **more}


def draft(value=1, unit="{pill}", frequency=3, stu3=False, medication=None, **instruction):
    quantity = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    dosage = {"timing": {"repeat": {"frequency": frequency, "period": 1, "periodUnit": "d"}},
              **({"doseQuantity": quantity} if stu3 else {"doseAndRate": [{"doseQuantity": quantity}]}),
              **instruction}
    return {"resourceType": "MedicationRequest", "id": "draft-1", "status": "draft", "intent": "order",
            "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-11-30",
            "note": [{"text": "keep me"}],
            "medicationCodeableConcept": medication or product(20), "dosageInstruction": [dosage]}


def doses(resource, stu3=False):
    """(value, unit code, administrations a day, when) of each instruction."""
    result = []
    for instruction in resource["dosageInstruction"]:
        quantity = instruction["doseQuantity"] if stu3 else instruction["doseAndRate"][0]["doseQuantity"]
        repeat = instruction["timing"]["repeat"]
        result.append((quantity["value"], quantity["code"], repeat["frequency"], tuple(repeat.get("when", ()))))
    return result


def strength_of(resource):
    return product_strength([resource["medicationCodeableConcept"]], K)


def tablet_code(resource):
    return resource["medicationCodeableConcept"]["coding"][0]["code"]


def test_ninety_a_day_on_20_mg_tablets_is_never_40_mg_twice_daily():
    written = write_daily_dose(draft(2, frequency=2), 80, TAB20, K)
    assert doses(written.resource) == [(1, "{pill}", 4, ())]
    assert written.how == "20 mg four times daily (80 mg/day)"
    assert "was twice daily" in written.description
    assert write_daily_dose(draft(2, frequency=2), 90, TAB20, K) is None  # 90 > 4 x 20 mg


def test_three_20_mg_tablets_once_daily_cut_to_15_switches_to_5_mg_tablets():
    written = write_daily_dose(draft(3, frequency=1), 15, TAB20, K)
    assert doses(written.resource) == [(3, "{pill}", 1, ())]  # three whole 5 mg tablets
    assert tablet_code(written.resource) == "430902"
    assert "switched to baclofen 5 mg tablet" in written.description
    assert daily_dose(written.resource, strength_of(written.resource), K) == 15


def test_the_ordered_product_and_frequency_are_kept_when_whole_tablets_make_the_dose():
    request = draft(2, frequency=3, medication=product(10))
    written = write_daily_dose(request, 30, TAB10, K)
    assert doses(written.resource) == [(1, "{pill}", 3, ())]
    assert tablet_code(written.resource) == "197391" and "switched" not in written.description
    assert written.resource["id"] == "draft-1" and written.resource["note"] == [{"text": "keep me"}]
    assert request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] == 2  # untouched


def test_unequal_doses_share_one_sequence_remainder_in_the_evening():
    written = write_daily_dose(draft(1, "mg", frequency=2, medication=product(5)), 25, TAB5, K)
    assert doses(written.resource) == [(10, "mg", 1, ("MORN",)), (15, "mg", 1, ("EVE",))]
    assert {i["sequence"] for i in written.resource["dosageInstruction"]} == {1}
    assert written.how == "10 mg morning, 15 mg evening (25 mg/day)"
    assert daily_dose(written.resource, TAB5, K) == 25


def test_nearest_frequency_wins_and_a_tie_goes_to_the_higher():
    # 30 mg/day on 10 mg tablets ordered twice daily: once (30 mg) is too much, three times fits.
    written = write_daily_dose(draft(1, frequency=2, medication=product(10)), 30, TAB10, K)
    assert doses(written.resource) == [(1, "{pill}", 3, ())]
    # 20 mg/day on 5 mg tablets ordered three times daily: 2 and 4 are equally near; 4 wins.
    written = write_daily_dose(draft(1, frequency=3, medication=product(5)), 20, TAB5, K)
    assert doses(written.resource) == [(1, "{pill}", 4, ())]


def test_daily_dose_is_rounded_down_to_a_multiple_of_5():
    written = write_daily_dose(draft(1, frequency=1, medication=product(5)), 14.9, TAB5, K)
    assert daily_dose(written.resource, TAB5, K) == 10
    assert write_daily_dose(draft(1, frequency=1, medication=product(5)), 4, TAB5, K) is None


def test_the_largest_generic_tablet_that_makes_the_dose():
    written = write_daily_dose(draft(1, frequency=2), 40, Strength(15.0, False), K)
    assert tablet_code(written.resource) == "197392"  # 20 mg twice daily
    assert "switched to baclofen 20 mg tablet" in written.description


def test_switch_drops_the_contained_medication_it_replaces():
    request = draft(1, frequency=1)
    del request["medicationCodeableConcept"]
    request["contained"] = [{"resourceType": "Medication", "id": "m", "code": product(20)}]
    request["medicationReference"] = {"reference": "#m"}
    written = write_daily_dose(request, 15, TAB20, K)
    assert "contained" not in written.resource and "medicationReference" not in written.resource
    assert tablet_code(written.resource) == "430902"
    validate(written.resource)


def test_liquid_volumes_are_half_millilitres():
    solution = {"coding": [{"system": RXNORM, "code": "2593376"}], "text": "Baclofen 5 MG/ML Oral Suspension"}
    written = write_daily_dose(draft(2, "mL", frequency=3, medication=solution), 15, Strength(5.0, True), K)
    assert doses(written.resource) == [(1, "mL", 3, ())]
    written = write_daily_dose(draft(2, "mL", frequency=2, medication=solution), 5, Strength(5.0, True), K)
    assert doses(written.resource) == [(0.5, "mL", 2, ())]  # 2.5 mg = 0.5 mL twice daily


def test_unknown_strength_writes_mg_and_the_pharmacist_chooses():
    request = draft(1, frequency=2, medication={"text": "baclofen"})
    written = write_daily_dose(request, 20, None, K)
    assert doses(written.resource) == [(10, "mg", 2, ())]
    assert "pharmacist chooses the product" in written.description
    assert written.resource["medicationCodeableConcept"] == {"text": "baclofen"}


def test_stu3_form_puts_the_dose_on_the_dosage():
    written = write_daily_dose(draft(2, "mg", frequency=2, stu3=True, medication=product(5)), 25, TAB5, K)
    assert doses(written.resource, stu3=True) == [(10, "mg", 1, ("MORN",)), (15, "mg", 1, ("EVE",))]
    assert all("doseAndRate" not in i for i in written.resource["dosageInstruction"])
    validate(written.resource, "STU3")


def test_as_needed_cap_follows_the_new_daily_dose():
    cap = {"numerator": {"value": 60, "unit": "mg", "system": UCUM, "code": "mg"},
           "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"}}
    written = write_daily_dose(draft(1, frequency=3, maxDosePerPeriod=cap, asNeededBoolean=True), 40, TAB20, K)
    assert written.resource["dosageInstruction"][0]["maxDosePerPeriod"]["numerator"]["value"] == 40
    assert written.resource["dosageInstruction"][0]["asNeededBoolean"] is True


def test_timing_code_is_kept_when_the_frequency_is_kept():
    request = draft(1, frequency=3, medication=product(10))
    request["dosageInstruction"][0]["timing"] = {"code": {"coding": [{"code": "TID"}]}}
    written = write_daily_dose(request, 30, TAB10, K)
    assert written.resource["dosageInstruction"][0]["timing"] == {"code": {"coding": [{"code": "TID"}]}}


@pytest.mark.parametrize("target", range(5, 85, 5))
@pytest.mark.parametrize("strength, medication", [
    (TAB5, product(5)), (TAB10, product(10)), (TAB20, product(20)), (None, {"text": "baclofen"}),
    (Strength(1.0, True), {"coding": [{"system": RXNORM, "code": "250976"}]}),
])
@pytest.mark.parametrize("frequency", [1, 2, 3, 4])
@pytest.mark.parametrize("stu3", [False, True])
def test_every_written_dose_is_whole_tablets_at_most_20_mg_at_most_4_a_day(target, strength, medication,
                                                                          frequency, stu3):
    unit = "mL" if strength and strength.per_ml else "{pill}"
    written = write_daily_dose(draft(1, unit, frequency, stu3, medication), target, strength, K, stu3=stu3)
    resource = written.resource
    validate(resource, "STU3" if stu3 else "R4")
    written_strength = strength_of(resource) if strength else None
    assert daily_dose(resource, written_strength, K) == target
    administrations = 0
    for value, code, per_day, _ in doses(resource, stu3):
        administrations += per_day
        dose_mg = value * written_strength.mg if code in ("{pill}", "mL") else value
        assert dose_mg <= 20
        if code == "{pill}":
            assert float(value).is_integer()
        if code == "mL":
            assert float(value * 2).is_integer()
    assert administrations <= 4


def test_no_regimen_above_four_doses_of_20_mg():
    assert plan_regimen(90, 5.0, 2, K) is None
    assert plan_regimen(80, 5.0, 2, K).doses == (20, 20, 20, 20)


def test_a_draft_of_unequal_doses_is_rewritten_with_its_whole_frequency():
    uneven = write_daily_dose(draft(1, "mg", frequency=2, medication=product(5)), 25, TAB5, K).resource
    written = write_daily_dose(uneven, 20, TAB5, K)
    assert doses(written.resource) == [(10, "mg", 2, ())]
    assert daily_dose(written.resource, TAB5, K) == 20
