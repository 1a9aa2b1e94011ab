"""Writes patient_view/*.json: stories for the patient-view service (rule 21, the next steps
for cramps on baclofen). Run: python -m fhir_fixtures.make_patient_view_stories

Same shape as stories/*.json (see fhir_fixtures/__init__.py) with no drafts, plus
"hook": "patient-view" and "expect_card": what the clinician must see on the card:
- summary / detail: phrases that must appear; detail_absent: phrases that must not;
- baclofen_mg: the daily dose of the proposed baclofen MedicationRequest (null: none);
- service_requests: the codes of every ServiceRequest offered (LOINC labs, SNOMED referral);
- medications: the names of the other medications proposed.
"""
from __future__ import annotations

import json
from pathlib import Path

from .make_stories import SNOMED, condition, cramps, lab, order

OUT = Path(__file__).with_name("patient_view")
TOPIC = "cramps-next-steps"
K, MG, NA, CREAT, REFERRAL = "2823-3", "19123-9", "2951-2", "2160-0", "3457005"


def on_baclofen(sid: str, count: float, per_day: int, product: str = "bac10",
                changed_days_ago: int = 40, course_days: int = 120) -> list[dict]:
    """An active order authored `changed_days_ago` (the last dose change), following a
    completed one that started the course `course_days` ago."""
    first = order(sid, "first", "bac5", 1, 2, status="completed", authored=f"@today-{course_days}d")
    current = order(sid, "current", product, count, per_day, status="active",
                    authored=f"@today-{changed_days_ago}d",
                    priorPrescription={"reference": f"MedicationRequest/{sid}-first"})
    return [first, current]


def hemodialysis(sid: str, days_ago: int) -> dict:
    return {"resourceType": "Procedure", "id": f"{sid}-hd-{days_ago}", "status": "completed",
            "code": {"coding": [{"system": SNOMED, "code": "302497006", "display": "Hemodialysis"}],
                     "text": "Hemodialysis"},
            "subject": {"reference": f"Patient/{sid}"}, "performedDateTime": f"@today-{days_ago}d"}


def card(summary=(), detail=(), detail_absent=(), baclofen_mg=None, service_requests=(),
         medications=()) -> dict:
    return {"summary": list(summary), "detail": list(detail), "detail_absent": list(detail_absent),
            "baclofen_mg": baclofen_mg, "service_requests": sorted(service_requests),
            "medications": sorted(medications)}


def pv_story(sid: str, title: str, fires: bool, expect_card: dict | None, extra: list, **more) -> dict:
    story = cramps(sid, title, {TOPIC: "info"} if fires else {}, drafts=[], extra=extra, **more)
    story["hook"] = "patient-view"
    if expect_card is not None:
        story["expect_card"] = expect_card
    return story


def all_stories() -> list[dict]:
    s = []
    sid = "pv-cirrhosis-20"
    s.append(pv_story(
        sid, "Cirrhosis with cramps on baclofen 20 mg/day for 40 days, no potassium or magnesium on record",
        True, card(summary=["20 mg/day", "increase to 30 mg/day", "stretching", "check electrolytes"],
                   detail=["increase to 30 mg/day", "Stretching and massage", "No potassium result",
                           "No magnesium result", "If cramps persist at 30 mg/day"],
                   detail_absent=["Cramps persist at"],
                   baclofen_mg=30, service_requests=[K, MG]),
        on_baclofen(sid, 1, 2), potassium=None, magnesium=None, given="Zoe", family="Carter",
        gender="female"))
    sid = "pv-cirrhosis-30-younger"
    s.append(pv_story(
        sid, "Cirrhosis, 52 years, cramps persist on baclofen 30 mg/day: albumin, orphenadrine, monitoring, referral",
        True, card(summary=["30 mg/day (the maximum for cramps)", "albumin, orphenadrine, monitoring",
                            "referral"],
                   detail=["Potassium 4.1 mmol/L", "is normal", "albumin 20-40 g/week",
                           "first 30 days", "Refer to a specialist"],
                   detail_absent=["increase to", "not suggested at age"],
                   service_requests=[CREAT, NA, K, REFERRAL],
                   medications=["albumin human", "orphenadrine"]),
        on_baclofen(sid, 1, 3), born="@today-52y", given="Daniel", family="Weber",
        unavailable={"potassium": "HTTP 503"},
        expect_unavailable={"fires": {TOPIC: "info"}, "silent": []},
        expect_card_unavailable=card(detail=["Potassium could not be read (HTTP 503)"],
                                     service_requests=[CREAT, NA, K, REFERRAL],
                                     medications=["albumin human", "orphenadrine"])))
    sid = "pv-cirrhosis-30-older"
    s.append(pv_story(
        sid, "Cirrhosis, 72 years, cramps persist on baclofen 30 mg/day: albumin and monitoring, no orphenadrine",
        True, card(summary=["albumin, monitoring", "referral"],
                   detail=["Orphenadrine is not suggested at age 72", "albumin 20-40 g/week"],
                   service_requests=[CREAT, NA, K, REFERRAL], medications=["albumin human"]),
        on_baclofen(sid, 1, 3), born="@today-72y-1m", given="Margaret", family="Holm",
        gender="female"))
    sid = "pv-no-cirrhosis-30"
    s.append(pv_story(
        sid, "Nocturnal leg cramps without liver disease, 45 years, on baclofen 30 mg/day: methocarbamol trial",
        True, card(summary=["methocarbamol trial", "referral"],
                   detail=["No cirrhosis on the problem list", "short trial of methocarbamol"],
                   detail_absent=["albumin 20"], service_requests=[REFERRAL],
                   medications=["methocarbamol"]),
        on_baclofen(sid, 1, 3), liver=None, born="@today-45y", given="Sofia", family="Lang",
        gender="female"))
    sid = "pv-no-cirrhosis-30-older"
    s.append(pv_story(
        sid, "Leg cramps without liver disease, 70 years, on baclofen 30 mg/day: no methocarbamol (Beers)",
        True, card(summary=["referral"], detail=["Methocarbamol is not suggested at age 70"],
                   service_requests=[REFERRAL]),
        on_baclofen(sid, 1, 3), liver=None, born="@today-70y-2m", given="Karl", family="Brandt"))
    sid = "pv-no-cirrhosis-10"
    s.append(pv_story(
        sid, "Leg cramps without liver disease on baclofen 10 mg/day for 6 weeks: step up to 20 mg/day",
        True, card(summary=["10 mg/day", "increase to 20 mg/day"],
                   detail=["increase to 20 mg/day, then by 10 mg/day every 7 days up to 30 mg/day",
                           "If cramps persist at 30 mg/day: a short trial of methocarbamol"],
                   baclofen_mg=20),
        on_baclofen(sid, 1, 1), liver=None, born="@today-61y", given="Hannah", family="Roth",
        gender="female", unavailable={"meds": "HTTP 503"},
        expect_unavailable={"fires": {TOPIC: "info"}, "silent": []},
        expect_card_unavailable=card(summary=["could not be checked: current medications (HTTP 503)"],
                                     detail=["Review the baclofen dose"])))
    sid = "pv-renal-avoid"
    s.append(pv_story(
        sid, "Cramps on baclofen 20 mg/day with eGFR 25: avoid baclofen, no increase",
        True, card(summary=["avoid baclofen", "eGFR 25"], detail=["Avoid baclofen", "never stop abruptly"],
                   detail_absent=["increase to"], service_requests=[REFERRAL]),
        on_baclofen(sid, 1, 2), egfr=25, given="Ines", family="Moreau", gender="female"))
    sid = "pv-dialysis-procedure"
    s.append(pv_story(
        sid, "Cramps on baclofen 20 mg/day, haemodialysis 2 days ago (a Procedure, no diagnosis coded)",
        True, card(summary=["avoid baclofen", "dialysis"], detail=["Avoid baclofen: dialysis"],
                   detail_absent=["increase to"], service_requests=[REFERRAL]),
        on_baclofen(sid, 1, 2) + [hemodialysis(sid, 2), hemodialysis(sid, 4)], egfr=None,
        given="Amir", family="Haddad"))
    sid = "pv-dialysis-procedure-old"
    s.append(pv_story(
        sid, "Near miss: one haemodialysis 60 days ago (acute kidney injury, recovered, eGFR 75 now)",
        True, card(summary=["increase to 30 mg/day"], detail=["eGFR 75"], detail_absent=["Avoid baclofen"],
                   baclofen_mg=30),
        on_baclofen(sid, 1, 2) + [hemodialysis(sid, 60)], egfr=75, given="Lucia", family="Ferri",
        gender="female", unavailable={"procedures": "OperationOutcome"},
        expect_unavailable={"fires": {TOPIC: "info"}, "silent": []},
        expect_card_unavailable=card(
            summary=["renal function unknown"],
            detail=["dialysis procedures could not be read (OperationOutcome): no increase is suggested"],
            detail_absent=["increase to 30"])))
    sid = "pv-renal-cap"
    s.append(pv_story(
        sid, "Cramps on baclofen 10 mg/day with eGFR 45: the next step stops at the 15 mg/day renal limit",
        True, card(summary=["10 mg/day", "increase to 15 mg/day"],
                   detail=["at most 15 mg/day", "increase to 15 mg/day (the renal limit)"],
                   baclofen_mg=15),
        on_baclofen(sid, 1, 2, product="bac5"), egfr=45, given="Oskar", family="Lind"))
    sid = "pv-recent-change"
    s.append(pv_story(
        sid, "Cramps on baclofen 20 mg/day, dose raised 3 days ago: no step before day 7",
        True, card(summary=["next increase from"], detail=["(3 days ago)", "at most every 7 days"],
                   detail_absent=["increase to 30"]),
        on_baclofen(sid, 1, 2, changed_days_ago=3), given="Lena", family="Fischer", gender="female"))
    sid = "pv-no-cramp-condition"
    s.append(pv_story(
        sid, "Near miss: cirrhosis on baclofen 20 mg/day but no muscle-cramp Condition on the problem list",
        False, None, on_baclofen(sid, 1, 2), given="Victor", family="Hale"))
    s[-1]["resources"] = [r for r in s[-1]["resources"] if not r["id"].endswith("-cramps")]
    sid = "pv-spasticity-with-cramps"
    s.append(pv_story(
        sid, "Near miss: multiple sclerosis on baclofen 30 mg/day for spasticity, cramps also on the problem list",
        False, None, on_baclofen(sid, 1, 3) + [condition(sid, "ms")], liver=None, given="Greta",
        family="Olsen", gender="female"))
    sid = "pv-minor"
    s.append(pv_story(
        sid, "Near miss: a 16-year-old with cramps on baclofen 10 mg/day (adults only)",
        False, None, on_baclofen(sid, 1, 1), born="@today-16y", given="Mia", family="Young",
        gender="female"))
    sid = "pv-no-birth-date"
    s.append(pv_story(
        sid, "Cramps on baclofen 20 mg/day, no birth date in the record: age unknown, said so",
        True, card(summary=["could not be checked: age (no birth date on record)"],
                   detail=["Review the baclofen dose"]),
        on_baclofen(sid, 1, 2), given="Robin", family="Doe"))
    del s[-1]["patient"]["birthDate"]
    sid = "pv-stale-renal"
    s.append(pv_story(
        sid, "Cramps on baclofen 10 mg/day, last eGFR a year ago: check creatinine before increasing",
        True, card(summary=["check renal function"], detail=["no renal value in the last 180 days"],
                   detail_absent=["increase to"], service_requests=[CREAT]),
        on_baclofen(sid, 1, 1) + [lab(sid, "egfr", 88, "@today-1y")], egfr=None, given="Paul",
        family="Stone"))
    return s


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for item in all_stories():
        (OUT / f"{item['id']}.json").write_text(json.dumps(item, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
