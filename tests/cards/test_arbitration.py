"""One plan per order (rules.md): arbitration of the rules' findings before the cards are built."""
from datetime import datetime, timedelta, timezone

from cards.arbitration import plan
from cards.cardbuilder import DoseLimit, Finding, build_cards
from cards.dose import daily_dose, product_strength
from cards.engine import evaluate
from cards.facts import Facts
from cards.hookdata import HookData
from cards.knowledge import load_knowledge

from fhircheck import validate
from test_dose_writer import draft, product

K = load_knowledge()
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)
PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1960-05-01", "gender": "female"}


def active_order(tablets=1, frequency=3, tablet_mg=20, days_ago=700, order_id="active-1"):
    order = draft(tablets, frequency=frequency, medication=product(tablet_mg))
    order.update(id=order_id, status="active",
                 authoredOn=(NOW - timedelta(days=days_ago)).date().isoformat())
    return order


def facts_for(*drafts, active=(), hook="order-sign"):
    data = HookData(hook=hook, fhir_version="R4", now=NOW, patient_id="p1", drafts=tuple(drafts),
                    patient=PATIENT, medication_requests=tuple(active))
    return Facts(data, K)


def finding(topic, key="draft-1", indicator="warning", suggestions=(), **more):
    return Finding(topic, indicator, f"{topic} summary", f"{topic} detail.", list(suggestions),
                   draft=key, **more)


def lab(code):
    return {"type": "create", "description": f"Order {code}.",
            "resource": {"resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
                         "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                         "subject": {"reference": "Patient/p1"}}}


def suggestion(*actions, label="s", recommended=True):
    return {"label": label, "isRecommended": recommended, "actions": list(actions)}


def delete(key="draft-1"):
    return {"type": "delete", "description": "Remove.", "resourceId": f"MedicationRequest/{key}"}


def by_topic(findings):
    return {f.topic: f for f in findings}


def updates(finding):
    return [a for s in finding.suggestions for a in s["actions"] if a["type"] == "update"]


def written_daily(resource):
    """The daily dose of the first step the resource writes."""
    strength = product_strength([resource["medicationCodeableConcept"]], K)
    first = resource["dosageInstruction"][0].get("sequence")
    step = [i for i in resource["dosageInstruction"] if i.get("sequence") == first]
    return daily_dose({"dosageInstruction": step}, strength, K)


def naive_draft(tablets=2, frequency=2, tablet_mg=10):
    return draft(tablets, frequency=frequency, medication=product(tablet_mg))


# --- one target per draft ------------------------------------------------------------------


def test_every_card_offers_the_lowest_limit_and_says_which_set_it():
    facts = facts_for(naive_draft())  # 20 mg/day, baclofen-naive
    found = by_topic(plan([finding("start-dose-high", dose_limit=DoseLimit(15, "the starting dose")),
                           finding("renal-reduce", dose_limit=DoseLimit(10, "the renal limit"))], facts))
    for topic in ("start-dose-high", "renal-reduce"):
        (action,) = updates(found[topic])
        assert written_daily(action["resource"]) == 10
        validate(action["resource"])
        assert found[topic].suggestions[0]["label"] == "Change to 10 mg/day"
    assert "10 mg/day: the renal limit is lower than the starting dose" in found["start-dose-high"].detail
    assert "Suggested dose: 10 mg/day (the renal limit)" in found["renal-reduce"].detail


def test_the_target_is_rounded_down_to_5_and_never_below_5():
    facts = facts_for(naive_draft(2, 2, 10))  # 40 mg/day
    (half,) = plan([finding("renal-reduce", dose_limit=DoseLimit(17.5, "the renal limit"))], facts)
    assert written_daily(updates(half)[0]["resource"]) == 15
    (low,) = plan([finding("dose-above-max", dose_limit=DoseLimit(2, "the ceiling"))], facts)
    assert written_daily(updates(low)[0]["resource"]) == 5


def test_no_dose_change_when_lowering_this_draft_would_not_help():
    facts = facts_for(naive_draft(1, 2, 10))  # 20 mg/day
    (found,) = plan([finding("dose-above-max", dose_limit=DoseLimit(25, "the ceiling"))], facts)
    assert not updates(found)


def test_a_limit_the_writer_cannot_meet_says_so():
    request = naive_draft()
    request["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 5  # 100 mg/day
    (found,) = plan([finding("dose-above-max", dose_limit=DoseLimit(85, "the ceiling"))], facts_for(request))
    assert not updates(found) and "change it by hand to 85 mg/day" in found.detail


# --- deep cuts taper -----------------------------------------------------------------------


def test_a_deep_cut_of_established_therapy_is_the_taper_on_every_card():
    change = draft(1, frequency=2, medication=product(20)) | {"id": "active-1"}  # 60 -> 40 mg/day
    facts = facts_for(change, active=[active_order()])
    found = by_topic(plan([finding("renal-reduce", key="active-1", dose_limit=DoseLimit(20, "the renal limit")),
                           finding("abrupt-stop", key="active-1", taper=True)], facts))
    (renal,), (stop,) = updates(found["renal-reduce"]), updates(found["abrupt-stop"])
    assert renal["resource"] == stop["resource"]
    steps = [i for i in renal["resource"]["dosageInstruction"]]
    assert written_daily(renal["resource"]) == 50  # 60 - 10 at once
    last = max(i["sequence"] for i in steps)
    assert all("boundsDuration" not in i["timing"]["repeat"] for i in steps if i["sequence"] == last)
    assert "| Step | Days | Daily dose | How |" in found["renal-reduce"].detail
    assert found["renal-reduce"].suggestions[0]["label"].startswith("Taper to 20 mg/day over")
    validate(renal["resource"])


def test_a_deep_cut_of_a_course_under_14_days_is_a_single_dose_change():
    change = draft(1, frequency=2, medication=product(20)) | {"id": "active-1"}  # 60 -> 40 mg/day
    facts = facts_for(change, active=[active_order(days_ago=10)])
    (found,) = plan([finding("renal-reduce", key="active-1", dose_limit=DoseLimit(20, "the renal limit"))], facts)
    (action,) = updates(found)
    assert written_daily(action["resource"]) == 20
    assert not any("sequence" in i for i in action["resource"]["dosageInstruction"])


def test_a_cut_to_half_or_more_is_a_single_dose_change():
    change = draft(1, frequency=2, medication=product(20)) | {"id": "active-1"}  # 60 -> 40
    facts = facts_for(change, active=[active_order()])
    (found,) = plan([finding("renal-reduce", key="active-1", dose_limit=DoseLimit(30, "the renal limit"))], facts)
    (action,) = updates(found)
    assert written_daily(action["resource"]) == 30
    assert not any("sequence" in i for i in action["resource"]["dosageInstruction"])


def test_abrupt_stop_alone_tapers_off_a_stop_and_down_to_a_cut():
    stop = active_order() | {"status": "stopped"}
    del stop["dosageInstruction"]  # the stop order takes the dosage of the order it stops
    stop["id"] = "active-1"
    facts = facts_for(stop, active=[active_order()])
    (found,) = plan([finding("abrupt-stop", key="active-1", taper=True)], facts)
    (action,) = updates(found)
    assert action["resource"]["status"] == "draft" and written_daily(action["resource"]) == 50
    assert found.suggestions[0]["label"].startswith("Taper off over 24 days")
    cut = draft(1, "{pill}", 1, medication=product(20)) | {"id": "active-1"}  # 60 -> 20 mg/day
    (found,) = plan([finding("abrupt-stop", key="active-1", taper=True)],
                    facts_for(cut, active=[active_order()]))
    resource = updates(found)[0]["resource"]
    last = [i for i in resource["dosageInstruction"] if i["sequence"] == max(
        j["sequence"] for j in resource["dosageInstruction"])]
    assert sum(daily_dose({"dosageInstruction": [i]}, product_strength([resource["medicationCodeableConcept"]], K), K)
               for i in last) == 20


# --- avoid wins, duplicate wins ------------------------------------------------------------


def test_avoid_wins_for_established_therapy_taper_first_delete_second():
    change = active_order() | {"status": "draft"}
    facts = facts_for(change, active=[active_order()])
    renal = finding("renal-avoid", key="active-1", indicator="critical",
                    suggestions=[suggestion(delete("active-1"), recommended=False),
                                 suggestion(lab("2160-0"))])
    found = plan([renal, finding("dose-above-max", key="active-1", dose_limit=DoseLimit(30, "the ceiling")),
                  finding("tolerance", key="active-1", indicator="info"),
                  finding("abrupt-stop", key="active-1", taper=True),
                  finding("elderly-start", key=None, indicator="info")], facts)
    assert [f.topic for f in found] == ["renal-avoid", "abrupt-stop"]
    avoid, stop = found
    taper, removal, creatinine = avoid.suggestions
    assert taper["isRecommended"] and taper["label"].startswith("Taper off over 24 days")
    assert removal["actions"][0]["type"] == "delete" and not removal["isRecommended"]
    assert creatinine["actions"][0]["type"] == "create"
    resource = taper["actions"][0]["resource"]
    validate(resource)
    assert all("boundsDuration" in i["timing"]["repeat"] for i in resource["dosageInstruction"])
    assert "| 1 | 1-3 | 50 mg/day |" in avoid.detail
    assert not stop.suggestions  # other cards keep their text but change no dose


def test_avoid_for_a_naive_patient_is_delete_only():
    facts = facts_for(naive_draft())
    (avoid,) = plan([finding("renal-avoid", indicator="critical")], facts)
    (removal,) = avoid.suggestions
    assert removal["isRecommended"] and [a["resourceId"] for a in removal["actions"]] == ["MedicationRequest/draft-1"]
    assert not updates(avoid)


def test_a_duplicate_in_renal_avoid_is_removed_not_tapered():
    facts = facts_for(naive_draft(), active=[active_order()])  # established therapy continues
    found = by_topic(plan([finding("renal-avoid", indicator="critical"),
                           finding("duplicate-therapy", suggestions=[suggestion(delete())])], facts))
    (removal,) = found["renal-avoid"].suggestions
    assert removal["isRecommended"] and removal["actions"][0]["type"] == "delete"
    assert "duplicates another baclofen order" in found["renal-avoid"].detail


def test_duplicate_wins_no_dose_change_and_no_cut_read():
    facts = facts_for(naive_draft(), active=[active_order()])
    rewritten = {"type": "update", "description": "x", "resource": {"id": "draft-1"}}
    found = plan([finding("duplicate-therapy", suggestions=[suggestion(delete())]),
                  finding("dose-above-max", dose_limit=DoseLimit(10, "the ceiling"),
                          suggestions=[suggestion(rewritten)]),
                  finding("abrupt-stop", taper=True)], facts)
    assert [f.topic for f in found] == ["duplicate-therapy", "dose-above-max"]
    assert found[0].suggestions == [suggestion(delete())]
    assert found[1].suggestions == [] and found[1].detail == "dose-above-max detail."


# --- one lab order per response ------------------------------------------------------------


def test_the_first_card_in_card_order_keeps_a_lab_order():
    facts = facts_for(naive_draft())
    found = by_topic(plan([
        finding("cirrhosis-next-steps", key=None, indicator="info",
                suggestions=[suggestion(lab("2160-0"), lab("2951-2"), lab("2823-3"))]),
        finding("hypomagnesemia", key=None, suggestions=[suggestion(lab("2160-0"))]),
        finding("renal-unknown", key=None, suggestions=[suggestion(lab("2160-0"))]),
        finding("electrolytes-unknown", key=None, indicator="info", suggestions=[suggestion(lab("2823-3"))]),
    ], facts))
    codes = {topic: [a["resource"]["code"]["coding"][0]["code"] for s in f.suggestions for a in s["actions"]]
             for topic, f in found.items()}
    assert codes == {"renal-unknown": ["2160-0"], "hypomagnesemia": [],
                     "electrolytes-unknown": ["2823-3"], "cirrhosis-next-steps": ["2951-2"]}
    cards = build_cards(list(found.values()), K)
    assert [c["source"]["topic"]["code"] for c in cards][:2] == ["renal-unknown", "hypomagnesemia"]


# --- through the engine: the rules' limits arbitrated into one target ------------------------


def ms_patient_data(birth_date, egfr_value, *drafts):
    ms = {"resourceType": "Condition", "id": "ms", "subject": {"reference": "Patient/p1"},
          "clinicalStatus": {"coding": [{"code": "active"}]},
          "code": {"coding": [{"system": "http://snomed.info/sct", "code": "24700007"}]}}
    egfr = {"resourceType": "Observation", "id": "egfr", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "98979-8"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-25",
            "valueQuantity": {"value": egfr_value, "unit": "mL/min/{1.73_m2}",
                              "system": "http://unitsofmeasure.org", "code": "mL/min/{1.73_m2}"}}
    return HookData(hook="order-sign", fhir_version="R4", now=NOW, patient_id="p1", drafts=tuple(drafts),
                    patient=dict(PATIENT, birthDate=birth_date), conditions=(ms,), observations=(egfr,))


def cards_by_topic(data, knowledge=K):
    return {c["source"]["topic"]["code"]: c for c in evaluate(data, knowledge)}


def card_targets(card):
    return [written_daily(a["resource"]) for s in card.get("suggestions", []) for a in s["actions"]
            if a["type"] == "update"]


def test_engine_the_renal_limit_below_the_starting_dose_sets_both_cards():
    found = cards_by_topic(ms_patient_data("1970-01-01", 45, naive_draft(1, 2, 10)))  # 20 mg/day
    assert card_targets(found["start-dose-high"]) == card_targets(found["renal-reduce"]) == [10]
    assert "10 mg/day: the renal limit is lower than the starting dose" in found["start-dose-high"]["detail"]


def test_engine_the_starting_dose_below_the_renal_limit_sets_both_cards():
    found = cards_by_topic(ms_patient_data("1970-01-01", 45, naive_draft(2, 2, 10)))  # 40 mg/day
    assert card_targets(found["start-dose-high"]) == card_targets(found["renal-reduce"]) == [15]
    assert "15 mg/day: the starting dose is lower than the renal limit" in found["renal-reduce"]["detail"]


def test_engine_older_adults_start_at_the_lower_of_the_two_starting_doses():
    site = load_knowledge({"dosing": {"start_other_mg": 20}})
    older = cards_by_topic(ms_patient_data("1950-01-01", 90, naive_draft(2, 2, 10)), site)  # 76 years
    assert card_targets(older["start-dose-high"]) == [15]
    younger = cards_by_topic(ms_patient_data("1970-01-01", 90, naive_draft(2, 2, 10)), site)
    assert card_targets(younger["start-dose-high"]) == [20]
