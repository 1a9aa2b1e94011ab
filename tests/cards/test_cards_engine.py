"""Engine behaviour around the stories: failed queries, identity by code or name, STU3 data."""
from dataclasses import replace

import pytest
from storydata import hookdata_from_story

from cards.codes import concepts_of, drug_kind
from cards.engine import evaluate
from cards.knowledge import load_knowledge
from fhir_fixtures import load_story

K = load_knowledge()
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def topics(data, knowledge=K) -> dict:
    return {c["source"]["topic"]["code"]: c for c in evaluate(data, knowledge)}


def test_missing_value_is_rule_3_never_rule_20():
    assert set(topics(hookdata_from_story(load_story("renal-unknown-none")))) == {"renal-unknown"}


@pytest.mark.parametrize("key, silenced", [
    ("meds", "duplicate-therapy"),
    ("conditions", None),
    ("patient", None),
])
def test_failed_query_names_the_check_and_silences_rules_that_need_it(key, silenced):
    data = replace(hookdata_from_story(load_story("duplicate-therapy")), unavailable={key: "timeout"})
    if key == "patient":
        data = replace(data, patient=None)
    found = topics(data)
    assert "timeout" in found["data-unavailable"]["detail"]
    if silenced:
        assert silenced not in found


def test_failed_lab_query_does_not_ask_for_the_lab():
    data = replace(hookdata_from_story(load_story("electrolytes-unknown")),
                   unavailable={"potassium": "HTTP 500"})
    found = topics(data)
    assert "potassium: HTTP 500" in found["data-unavailable"]["detail"]
    codes = [a["resource"]["code"]["coding"][0]["code"]
             for s in found["electrolytes-unknown"]["suggestions"] for a in s["actions"]]
    assert codes == ["19123-9"]


def test_unrelated_failures_are_not_reported():
    data = replace(hookdata_from_story(load_story("avoid-cyclobenzaprine")), unavailable={"magnesium": "timeout"})
    assert set(topics(data)) == {"avoid-cyclobenzaprine"}


def test_unresolved_medication_reference_is_reported():
    story = load_story("medication-reference")
    data = replace(hookdata_from_story(story), medications={}, unavailable={"medication": "HTTP 404"})
    assert "referenced Medication" in topics(data)["data-unavailable"]["detail"]


@pytest.mark.parametrize("concept, kind", [
    ({"coding": [{"system": RXNORM, "code": "197391"}]}, "baclofen"),
    ({"text": "LIORESAL 10 mg"}, "baclofen"),
    ({"coding": [{"system": RXNORM, "code": "1666613"}], "text": "baclofen"}, "intrathecal"),
    ({"text": "Baclofen 50 MCG/ML Injection"}, "intrathecal"),
    ({"coding": [{"system": RXNORM, "code": "3322"}]}, "benzodiazepines"),
    ({"coding": [{"system": "urn:local", "code": "X", "display": "LORAZEPAM 1MG"}]}, "benzodiazepines"),
    ({"text": "Cyclobenzaprine 5 mg"}, "cyclobenzaprine"),
    ({"text": "Paracetamol 500 mg"}, None),
])
def test_drug_identity_by_code_then_name(concept, kind):
    assert drug_kind([concept], K) == kind


def test_intrathecal_route_excludes_an_oral_product_code():
    story = load_story("renal-avoid")
    draft = dict(story["drafts"][0])
    draft["dosageInstruction"] = [dict(draft["dosageInstruction"][0],
                                       route={"text": "Intrathecal"})]
    assert topics(replace(hookdata_from_story(story), drafts=(draft,))) == {}


@pytest.mark.parametrize("code, system, concept", [
    ("K74.60", "http://hl7.org/fhir/sid/icd-10-cm", "cirrhosis"),
    ("K7460", "http://hl7.org/fhir/sid/icd-10", "cirrhosis"),
    ("N18.6", "http://hl7.org/fhir/sid/icd-10-cm", "dialysis"),
    ("G35.D", "http://hl7.org/fhir/sid/icd-10-cm", "spasticity"),
    ("M06.9", "http://hl7.org/fhir/sid/icd-10-cm", "rheumatic"),
    ("I63.9", "http://hl7.org/fhir/sid/icd-10-cm", "cerebral"),
    ("714152005", "http://snomed.info/sct", "dialysis"),
])
def test_condition_codes_and_icd10_prefixes(code, system, concept):
    assert concept in concepts_of({"coding": [{"system": system, "code": code}]}, K)


def test_inactive_or_refuted_conditions_do_not_count():
    story = load_story("renal-avoid-dialysis")
    data = hookdata_from_story(story)
    resolved = [dict(c, clinicalStatus={"coding": [{"code": "resolved"}]}) for c in data.conditions]
    assert "renal-avoid" not in topics(replace(data, conditions=tuple(resolved)))
    stu3_active = [dict(c, clinicalStatus="active") for c in data.conditions]  # STU3: a plain code
    assert "renal-avoid" in topics(replace(data, conditions=tuple(stu3_active)))


def test_reason_reference_resolves_to_a_condition():
    story = load_story("not-indicated-rheumatic")
    draft = {k: v for k, v in story["drafts"][0].items() if k != "reasonCode"}
    draft["reasonReference"] = [{"reference": "Condition/not-indicated-rheumatic-fibromyalgia"}]
    assert "not-indicated-rheumatic" in topics(replace(hookdata_from_story(story), drafts=(draft,)))


def test_site_thresholds_change_what_fires():
    data = hookdata_from_story(load_story("renal-edge-60"))
    assert "renal-reduce" in topics(data, load_knowledge({"renal": {"reduce_below_egfr": 61}}))


def test_stale_low_value_on_dialysis_is_avoid_without_recheck():
    story = load_story("renal-reduce-stale")
    data = hookdata_from_story(story)
    esrd = load_story("renal-avoid-dialysis")["resources"]
    conditions = tuple(r for r in esrd if r["resourceType"] == "Condition")
    card = topics(replace(data, conditions=conditions))["renal-avoid"]
    assert [a["type"] for s in card["suggestions"] for a in s["actions"]] == ["delete"]
