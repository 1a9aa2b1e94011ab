"""The knowledge file: defaults, sources beside every value, site overrides and their errors."""
import pytest

from cards.knowledge import KnowledgeError, load_knowledge


def test_lab_codes_cover_every_lab_loinc_of_the_reference():
    knowledge = load_knowledge()
    loinc = "http://loinc.org"
    assert ("http://loinc.org", "2160-0") in knowledge.lab_codes("creatinine")
    assert {c for _, c in knowledge.lab_codes("creatinine")} == {"2160-0", "14682-9", "38483-4", "59826-8"}
    assert {c for _, c in knowledge.lab_codes("egfr")} >= {"98979-8", "62238-1", "33914-3", "35591-7"}
    assert set(knowledge.lab_codes("potassium")) == {(loinc, "2823-3"), (loinc, "6298-4"), (loinc, "39789-3")}
    assert set(knowledge.lab_codes("magnesium")) == {(loinc, "19123-9"), (loinc, "2601-3")}


def test_every_section_names_its_source():
    raw = load_knowledge().raw
    sections = [raw[key] for key in raw if key not in ("drugs", "conditions", "labs", "sources")]
    sections += [*raw["drugs"].values(), *raw["conditions"].values(), *raw["labs"].values()]
    assert all(section.get("source") for section in sections)
    assert all(raw["sources"][key]["label"] for key in raw["sources"] if key != "notes")


def test_unconfirmed_values_are_marked_check():
    raw = load_knowledge().raw
    assert "check" in raw["drugs"]["cyclobenzaprine"]["source"]
    assert "check" in raw["conditions"]["rheumatic"]["source"]
    assert "check" in raw["products"]["notes"]["items"]


def test_site_overrides_deep_merge():
    knowledge = load_knowledge({"renal": {"avoid_below_egfr": 25},
                                "override_reasons": {"hypokalemia": [{"code": "x", "display": "X"}]}})
    assert knowledge.value("renal", "avoid_below_egfr") == 25
    assert knowledge.value("renal", "reduce_below_egfr") == 60
    assert [r["code"] for r in knowledge.override_reasons("hypokalemia")] == ["x"]
    assert knowledge.override_reasons("tolerance") == knowledge["override_reasons"]["default"]


@pytest.mark.parametrize("overrides, message", [
    ({"renal": {"avoid_below_egfr": "abc"}}, "renal.avoid_below_egfr: expected a number, got 'abc'"),
    ({"renal": {"avoid_below": 25}}, "renal.avoid_below: unknown key"),
    ({"renal": 5}, "renal: expected a table"),
    ({"drugs": {"baclofen": {"rxnorm": ["1292", 5]}}}, "drugs.baclofen.rxnorm[1]: expected a string"),
    ({"labs": {"magnesium": {"units": [{"unit": "mg/dL", "factor": "x"}]}}},
     "labs.magnesium.units[0].factor: expected a number"),
    ({"override_reasons": {"no-such-topic": []}}, "override_reasons.no-such-topic: unknown topic"),
    ({"override_reasons": {"default": [{"code": "a"}]}}, "override_reasons.default[0]: missing display"),
    ({"products": {"items": [{"rxnorm": "1", "mg": 5, "per_ml": "no"}]}},
     "products.items[0].per_ml: expected a boolean"),
    ({"topics": {"tolerance": {"source": "nowhere"}}}, "topics.tolerance.source: unknown source"),
])
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(KnowledgeError) as error:
        load_knowledge(overrides)
    assert message in str(error.value)


def test_knowledge_is_immutable():
    knowledge = load_knowledge()
    with pytest.raises(AttributeError):
        knowledge.systems = {}
    with pytest.raises(TypeError):
        knowledge["renal"]["avoid_below_egfr"] = 1


def test_override_snoozes_are_checked_and_a_site_may_add_its_own():
    knowledge = load_knowledge({"override_snooze": {"reasons": {
        "tolerated-dose": {"days": 14}, "site-reason": {"scope": "patient-topic", "days": 3}}}})
    reasons = knowledge["override_snooze"]["reasons"]
    assert (reasons["tolerated-dose"]["scope"], reasons["tolerated-dose"]["days"]) == ("patient-topic", 14)
    assert (reasons["site-reason"]["scope"], reasons["site-reason"]["days"]) == ("patient-topic", 3)
    assert load_knowledge({"override_snooze": {"reasons": {"x": {}}}})["override_snooze"]["reasons"]["x"]["scope"] == "order"
    assert knowledge["override_snooze"]["critical"] is False
    for bad, message in (({"scope": "forever"}, "scope: must be one of order, patient-topic"),
                         ({"days": -1}, "days: must be 0 or more")):
        with pytest.raises(KnowledgeError, match=message):
            load_knowledge({"override_snooze": {"reasons": {"tolerated-dose": bad}}})
