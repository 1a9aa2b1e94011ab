"""CKD-EPI 2021, lab unit conversions, status filters, dates and ages."""
from datetime import date, datetime, timezone

import pytest

from cards.dates import age_on, parse_when
from cards.knowledge import load_knowledge
from cards.labs import Unreadable, lab_value, lab_values, latest_within
from cards.renal import ckd_epi_2021, latest_renal

K = load_knowledge()
NOW = datetime(2026, 11, 21, 12, tzinfo=timezone.utc)


@pytest.mark.parametrize("female, age, creatinine, expected", [
    (True, 55, 0.9, 75.5), (True, 70, 0.8, 79.2), (False, 70, 0.8, 95.2),
    (False, 65, 1.4, 55.8), (True, 80, 2.0, 24.8),
])
def test_ckd_epi_2021_reference_vectors(female, age, creatinine, expected):
    assert ckd_epi_2021(creatinine, age, female, K) == pytest.approx(expected, abs=0.1)


def observation(loinc, value, code=None, unit=None, when="2026-11-01", status="final"):
    quantity = {"value": value}
    if code:
        quantity.update(system="http://unitsofmeasure.org", code=code)
    if unit:
        quantity["unit"] = unit
    return {"resourceType": "Observation", "status": status, "effectiveDateTime": when,
            "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}, "valueQuantity": quantity}


@pytest.mark.parametrize("obs, name, expected", [
    (observation("2160-0", 1.4, "mg/dL"), "creatinine", 1.4),
    (observation("14682-9", 123.8, "umol/L"), "creatinine", 1.4),
    (observation("14682-9", 123.8, unit="µmol/l"), "creatinine", 1.4),
    (observation("2160-0", 1.4, unit="mg/dl"), "creatinine", 1.4),
    (observation("2823-3", 3.4, "meq/L"), "potassium", 3.4),
    (observation("2823-3", 3.4, unit="mEq/L"), "potassium", 3.4),
    (observation("19123-9", 1.7, "mg/dL"), "magnesium", 0.70),
    (observation("19123-9", 1.4, "mg/dL"), "magnesium", 0.58),
    (observation("2601-3", 1.4, "meq/L"), "magnesium", 0.70),
    (observation("98979-8", 45, "mL/min/{1.73_m2}"), "egfr", 45),
    (observation("33914-3", 45, unit="mL/min/1.73m2"), "egfr", 45),
    (observation("35591-7", 45, "mL/min"), "egfr", 45),
    (observation("2823-3", 3.4, "258813002", "mmol/L"), "potassium", 3.4),  # odd code, readable unit
])
def test_unit_conversions_to_canonical(obs, name, expected):
    value = lab_value(obs, K)
    assert value.name == name and value.value == pytest.approx(expected)


@pytest.mark.parametrize("obs", [
    observation("2160-0", 1.4, "mg/dL", status="entered-in-error"),
    observation("2160-0", 1.4, "mg/dL", status="cancelled"),
    observation("2160-0", 1.4, "mg/dL", status="preliminary"),
    observation("2160-0", 1.4, "mg/dL", status="registered"),
    observation("2160-0", 1.4, "mg/dL", status="unknown"),
    observation("1234-5", 1.4, "mg/dL"),  # not a lab we read
])
def test_uncounted_observations_are_ignored(obs):
    assert lab_value(obs, K) is None


@pytest.mark.parametrize("status", ["final", "amended", "corrected"])
def test_final_amended_and_corrected_results_count(status):
    assert lab_value(observation("2160-0", 1.4, "mg/dL", status=status), K).value == 1.4


@pytest.mark.parametrize("obs", [
    observation("2160-0", 1.4, "kg"),  # unknown unit
    observation("2160-0", 1.4),  # no unit at all
])
def test_values_without_a_readable_unit_are_unreadable_not_absent(obs):
    value = lab_value(obs, K)
    assert isinstance(value, Unreadable) and value.name == "creatinine"
    assert value.label() == "a creatinine of 2026-11-01 could not be read (no unit)"


@pytest.mark.parametrize("comparator, expected", [
    (">", 59.1), (">=", 59.0), ("<", 58.9), ("<=", 59.0), (None, 59.0)])
def test_egfr_comparators_read_as_the_nearest_possible_value(comparator, expected):
    obs = observation("98979-8", 59, "mL/min/{1.73_m2}")
    if comparator:
        obs["valueQuantity"]["comparator"] = comparator
    assert lab_value(obs, K).value == expected


def test_latest_within_lookback():
    values = lab_values([observation("2823-3", 3.1, "mmol/L", when="2026-07-01"),
                         observation("2823-3", 4.0, "mmol/L", when="2026-10-01T08:00:00+02:00")], K)
    assert latest_within(values["potassium"], NOW, 90).value == 4.0
    assert latest_within(values["potassium"], NOW, 30) is None


def test_most_recent_renal_value_wins_reported_or_computed():
    labs = lab_values([observation("98979-8", 80, "mL/min/{1.73_m2}", when="2026-09-01"),
                       observation("2160-0", 2.0, "mg/dL", when="2026-11-01")], K)
    renal = latest_renal(labs, date(1946, 6, 1), "female", K)
    assert renal.egfr == pytest.approx(24.8, abs=0.1) and "CKD-EPI" in renal.basis
    older = lab_values([observation("98979-8", 80, "mL/min/{1.73_m2}", when="2026-11-10"),
                        observation("2160-0", 2.0, "mg/dL", when="2026-11-01")], K)
    assert latest_renal(older, date(1946, 6, 1), "female", K).egfr == 80


def test_age_at_sample_time_and_unknown_gender_takes_the_lower():
    labs = lab_values([observation("2160-0", 1.4, "mg/dL", when="2026-11-01")], K)
    # 65 at the sample (born 1961-06-01), 66 would give a different value.
    assert latest_renal(labs, date(1961, 6, 1), "male", K).egfr == pytest.approx(55.8, abs=0.1)
    female = latest_renal(labs, date(1961, 6, 1), "female", K).egfr
    assert latest_renal(labs, date(1961, 6, 1), "other", K).egfr == min(female, 55.8)
    assert latest_renal(labs, None, "male", K) is None
    assert latest_renal(labs, date(2015, 1, 1), "male", K) is None  # child: no CKD-EPI


@pytest.mark.parametrize("text, expected", [
    ("2026", datetime(2026, 1, 1, tzinfo=timezone.utc)),
    ("2026-10", datetime(2026, 10, 1, tzinfo=timezone.utc)),
    ("2026-10-02", datetime(2026, 10, 2, tzinfo=timezone.utc)),
    ("2026-10-02T08:00:00", datetime(2026, 10, 2, 8, tzinfo=timezone.utc)),
    ("2026-10-02T08:00:00Z", datetime(2026, 10, 2, 8, tzinfo=timezone.utc)),
    ("2026-10-02T10:00:00.123+02:00", datetime(2026, 10, 2, 8, 0, 0, 123000, tzinfo=timezone.utc)),
    ("garbage", None), (None, None),
])
def test_fhir_dates_of_any_precision(text, expected):
    assert parse_when(text) == expected


def test_age_turns_on_the_birthday():
    assert age_on(date(1961, 11, 21), date(2026, 11, 21)) == 65
    assert age_on(date(1961, 11, 22), date(2026, 11, 21)) == 64
    assert age_on(date(1960, 2, 29), date(2025, 2, 28)) == 64
    assert age_on(date(1960, 2, 29), date(2025, 3, 1)) == 65


@pytest.mark.parametrize("comparator, expected", [(">", 60.0), ("<", 58.0), (">=", 59.0)])
def test_a_site_reads_egfr_comparators_at_whole_number_precision(comparator, expected):
    """The catalog's '>59 is normal' needs a step of 1 (docs/catalog-v2.md): configurable."""
    whole_numbers = load_knowledge({"labs": {"egfr": {"comparator_step": 1}}})
    obs = observation("98979-8", 59, "mL/min/{1.73_m2}")
    obs["valueQuantity"]["comparator"] = comparator
    assert lab_value(obs, whole_numbers).value == expected
