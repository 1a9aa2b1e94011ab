"""Writes stories/*.json (the clinical fixtures). Run: python -m fhir_fixtures.make_stories

The JSON files are what tests and the demo read; this script is how they were written,
so a change to a shared building block (a lab, a base patient) is made once.
"""
from __future__ import annotations

import json
from pathlib import Path

from cards.knowledge import load_knowledge

OUT = Path(__file__).with_name("stories")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
UCUM = "http://unitsofmeasure.org"
TOPICS = load_knowledge().topics

LABS = {  # name -> (LOINC, display, UCUM code of the usual unit)
    "egfr": ("98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI 2021)", "mL/min/{1.73_m2}"),
    "creatinine": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL"),
    "creatinine_umol": ("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L"),
    "potassium": ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L"),
    "magnesium": ("19123-9", "Magnesium [Mass/volume] in Serum or Plasma", "mg/dL"),
    "magnesium_mmol": ("2601-3", "Magnesium [Moles/volume] in Serum or Plasma", "mmol/L"),
}
CONDITIONS = {  # name -> (SNOMED, ICD-10-CM, display)
    "ms": ("24700007", "G35.D", "Multiple sclerosis"),
    "cirrhosis": ("19943007", "K74.60", "Cirrhosis of liver"),
    "alcoholic_cirrhosis": ("716203000", "K70.31", "Decompensated alcoholic cirrhosis of liver with ascites"),
    "cramps": ("55300003", "R25.2", "Cramp and spasm"),
    "esrd": ("46177005", "N18.6", "End-stage renal disease"),
    "dialysis": ("105502003", "Z99.2", "Dependence on renal dialysis"),
    "sci": ("90584004", "S14.109S", "Spinal cord injury, cervical, sequela"),
    "fibromyalgia": ("203082005", "M79.7", "Fibromyalgia"),
    "stroke": ("230690007", "I69.351", "Hemiplegia following cerebral infarction"),
    "ckd4": ("431857002", "N18.4", "Chronic kidney disease stage 4"),
    "spasticity": ("221360009", "R25.8", "Spasticity"),
}
PROCEDURES = {  # name -> (system, code, display)
    "hemodialysis": (SNOMED, "302497006", "Hemodialysis"),
    "hemodialysis_cpt": ("http://www.ama-assn.org/go/cpt", "90935", "Hemodialysis procedure with single evaluation"),
}
PRODUCTS = {  # name -> (RxNorm, display, UCUM dose unit)
    "bac5": ("430902", "Baclofen 5 MG Oral Tablet", "{tbl}"),
    "bac10": ("197391", "Baclofen 10 MG Oral Tablet", "{tbl}"),
    "bac20": ("197392", "Baclofen 20 MG Oral Tablet", "{pill}"),
    "bac_sol": ("250976", "Baclofen 1 MG/ML Oral Solution", "mL"),
    "bac_it": ("1666613", "Baclofen 2 MG/ML Intrathecal Solution", "mL"),
    "cyclobenzaprine": ("21949", "Cyclobenzaprine 10 MG Oral Tablet", "{tbl}"),
    "quinidine": ("9068", "Quinidine sulfate 200 MG Oral Tablet", "{tbl}"),
}


def patient(sid: str, given: str, family: str, gender: str, born: str) -> dict:
    return {"resourceType": "Patient", "id": sid, "active": True,
            "identifier": [{"system": "urn:oid:2.16.840.1.113883.19.5", "value": f"MRN-{sid}"}],
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": gender, "birthDate": born}


def lab(sid: str, name: str, value: float, when: str = "@today-10d", unit: str | None = None,
        status: str = "final", code_unit: bool = True, suffix: str = "",
        comparator: str | None = None, no_unit: bool = False) -> dict:
    loinc, display, ucum = LABS[name]
    unit = unit or ucum
    quantity = {"value": value} if no_unit else {"value": value, "unit": unit}
    if comparator:
        quantity["comparator"] = comparator
    if code_unit and not no_unit:
        quantity.update(system=UCUM, code=unit)
    return {"resourceType": "Observation", "id": f"{sid}-{name.replace('_', '-')}{suffix}",
            "status": status,
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory", "display": "Laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{sid}"}, "effectiveDateTime": when,
            "valueQuantity": quantity}


def condition(sid: str, name: str, status: str = "active", onset: str = "@today-3y",
              verification: str = "confirmed") -> dict:
    snomed, icd10, display = CONDITIONS[name]
    return {"resourceType": "Condition", "id": f"{sid}-{name.replace('_', '-')}",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": status}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                               "code": verification}]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                      "code": "problem-list-item"}]}],
            "code": {"coding": [{"system": SNOMED, "code": snomed, "display": display},
                                {"system": ICD10, "code": icd10, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{sid}"}, "onsetDateTime": onset}


def order(sid: str, rid: str, product: str, count: float, per_day: int, status: str = "draft",
          authored: str = "@today", **extra) -> dict:
    """A MedicationRequest: `count` units of the product, `per_day` times a day."""
    rxnorm, display, unit = PRODUCTS[product]
    route = ("Intrathecal route", "72607000") if product == "bac_it" else ("Oral route", "26643006")
    resource = {"resourceType": "MedicationRequest", "id": f"{sid}-{rid}", "status": status,
                "intent": "order",
                "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxnorm, "display": display}],
                                              "text": display},
                "subject": {"reference": f"Patient/{sid}"}, "authoredOn": authored,
                "dosageInstruction": [{
                    "text": f"{count:g} {unit.strip('{}')} {per_day} times a day",
                    "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                    "route": {"coding": [{"system": SNOMED, "code": route[1], "display": route[0]}]},
                    "doseAndRate": [{"doseQuantity": {"value": count, "unit": unit, "system": UCUM, "code": unit}}]}]}
    resource.update(extra)
    return resource


def procedure(sid: str, name: str, when: str, status: str = "completed") -> dict:
    system, code, display = PROCEDURES[name]
    return {"resourceType": "Procedure", "id": f"{sid}-{name.replace('_', '-')}", "status": status,
            "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
            "subject": {"reference": f"Patient/{sid}"}, "performedDateTime": when}


def supplied(days: int) -> dict:
    """An order's expected supply: with authoredOn, when it ends (rules.md, Course)."""
    return {"dispenseRequest": {"expectedSupplyDuration": {
        "value": days, "unit": "days", "system": UCUM, "code": "d"}}}


def replaces(sid: str, rid: str) -> dict:
    return {"priorPrescription": {"reference": f"MedicationRequest/{sid}-{rid}"}}


def change(sid: str, old: tuple, new: tuple, days_ago: int, extra: list = ()) -> dict:
    """An active order `old` (product, count, times a day) authored `days_ago`, and a draft
    `new` that replaces it (priorPrescription); keyword arguments for a base patient."""
    current = order(sid, "current", *old, status="active", authored=f"@today-{days_ago}d")
    return {"extra": [current, *extra], "drafts": [order(sid, "draft", *new, **replaces(sid, "current"))]}


def reason(name: str, system: str = ICD10) -> dict:
    snomed, icd10, display = CONDITIONS[name]
    code = snomed if system == SNOMED else icd10
    return {"reasonCode": [{"coding": [{"system": system, "code": code, "display": display}], "text": display}]}


def story(sid: str, title: str, fires: dict, who: dict, resources: list, drafts: list,
          cards: dict | None = None, cards_by_hook: dict | None = None, **more) -> dict:
    """`cards`: what the clinician sees on some cards, {topic: {"summary": [text the summary
    contains], "suggestions": [[action, ...] per suggestion, in order], "second_choice":
    [indexes of the suggestions not recommended]}}; an action is
    "delete", "update 15 mg/day" (the daily dose it writes), "update taper 50 to 10 mg/day"
    (a taper plan: first and last step), or "create <code>" (LOINC, RxNorm or text)."""
    expect = {"fires": fires, "silent": [t for t in TOPICS if t not in fires]}
    if cards:
        expect["cards"] = cards
    if cards_by_hook:  # hook -> the same shape as `cards`, for that hook only
        expect["cards_by_hook"] = cards_by_hook
    return {"id": sid, "title": title, "expect": expect, "patient": who,
            "resources": resources, "drafts": drafts, **more}


# --- base patients ----------------------------------------------------------------------


def spasticity(sid: str, title: str, fires: dict, *, born: str = "@today-52y", egfr: float | None = 92,
               gender: str = "female", extra: list = (), drafts: list | None = None,
               given: str = "Maria", family: str = "Keller", diagnosis: str | None = "ms", **more) -> dict:
    """MS patient with normal kidneys, naive, drafted baclofen 5 mg three times daily."""
    resources = ([condition(sid, diagnosis)] if diagnosis else []) + ([lab(sid, "egfr", egfr)] if egfr is not None else []) + list(extra)
    drafts = drafts if drafts is not None else [order(sid, "draft", "bac5", 1, 3)]
    return story(sid, title, fires, patient(sid, given, family, gender, born), resources, drafts, **more)


def cramps(sid: str, title: str, fires: dict, *, born: str = "@today-58y", egfr: float | None = 85,
           potassium: float | None = 4.1, magnesium: float | None = 0.82, extra: list = (),
           drafts: list | None = None, gender: str = "male", given: str = "Thomas",
           family: str = "Brennan", liver: str | None = "cirrhosis", **more) -> dict:
    """Cirrhosis with cramps, normal kidneys and electrolytes, drafted baclofen 5 mg twice daily."""
    resources = [condition(sid, liver)] if liver else []
    resources.append(condition(sid, "cramps", onset="@today-2m"))
    resources += [lab(sid, "egfr", egfr)] if egfr is not None else []
    resources += [lab(sid, "potassium", potassium)] if potassium is not None else []
    resources += [lab(sid, "magnesium_mmol", magnesium)] if magnesium is not None else []
    drafts = drafts if drafts is not None else [order(sid, "draft", "bac5", 1, 2)]
    return story(sid, title, fires, patient(sid, given, family, gender, born), resources + list(extra),
                 drafts, **more)


def all_stories() -> list[dict]:
    s = []
    s.append(cramps("baseline-cramps-cirrhosis",
                    "Cirrhosis with nightly cramps, normal kidneys and electrolytes, starting baclofen 5 mg twice daily",
                    {}))
    s.append(spasticity("baseline-spasticity-ms",
                        "Multiple sclerosis spasticity, normal kidneys, starting baclofen 5 mg three times daily", {}))
    sid = "sandbox-pill-20mg"
    s.append(spasticity(sid, "Sandbox-style order: 3 pills of baclofen 20 mg once daily (60 mg/day) for a new MS patient",
                        {"start-dose-high": "warning"},
                        drafts=[order(sid, "draft", "bac20", 3, 1)], given="Ann", family="Test"))
    # --- renal ---
    s.append(spasticity("renal-avoid", "MS patient with CKD stage 4 (eGFR 24) about to start baclofen",
                        {"renal-avoid": "critical"}, egfr=24, extra=[condition("renal-avoid", "ckd4")],
                        given="Helen", family="Okafor"))
    sid = "renal-avoid-dialysis"
    s.append(spasticity(sid, "Spinal cord injury patient on haemodialysis for ESRD, baclofen drafted",
                        {"renal-avoid": "critical"}, egfr=None, gender="male", given="Jorge", family="Alvarez",
                        extra=[condition(sid, "esrd"), condition(sid, "dialysis"), condition(sid, "sci")]))
    sid = "renal-avoid-creatinine-mgdl"
    s.append(spasticity(sid, "80-year-old woman, creatinine 2.0 mg/dL (CKD-EPI 24.8), starting baclofen (avoid wins over the older-adult start)",
                        {"renal-avoid": "critical"}, egfr=None, born="@today-80y-2m",
                        given="Edith", family="Marsh", extra=[lab(sid, "creatinine", 2.0, "@today-5d")]))
    s.append(spasticity("renal-edge-30", "MS patient with eGFR exactly 30: reduce, not avoid",
                        {"renal-reduce": "warning"}, egfr=30, given="Ruth", family="Lindqvist"))
    s.append(spasticity("renal-edge-60", "MS patient with eGFR exactly 60: no renal adjustment",
                        {}, egfr=60, given="Paula", family="Sanz"))
    sid = "renal-reduce-creatinine-umol"
    s.append(spasticity(sid, "65-year-old man, creatinine 123.8 umol/L (CKD-EPI 55.8), starting baclofen",
                        {"renal-reduce": "warning", "elderly-start": "info"}, egfr=None, gender="male",
                        born="@today-65y-1m", given="Walter", family="Novak",
                        extra=[lab(sid, "creatinine_umol", 123.8, "@today-3d")]))
    sid = "renal-creatinine-unit-only"
    s.append(spasticity(sid, "Creatinine 1.9 sent with a unit text but no UCUM code (eGFR about 40)",
                        {"renal-reduce": "warning"}, egfr=None, gender="male", born="@today-58y",
                        given="Samuel", family="Reyes",
                        extra=[lab(sid, "creatinine", 1.9, "@today-20d", code_unit=False)]))
    sid = "renal-gender-unknown"
    s.append(spasticity(sid, "Gender unknown, creatinine 1.1 mg/dL at 55: the lower CKD-EPI result (59.3) applies",
                        {"renal-reduce": "warning"}, egfr=None, gender="unknown", born="@today-55y-1m",
                        given="Alex", family="Morgan", extra=[lab(sid, "creatinine", 1.1, "@today-7d")]))
    s.append(spasticity("renal-unknown-none", "New MS patient, no kidney tests on record, baclofen drafted",
                        {"renal-unknown": "warning"}, egfr=None, given="Nadia", family="Petrova"))
    sid = "renal-unknown-stale"
    s.append(spasticity(sid, "Last eGFR 85 was 200 days ago: recheck before baclofen",
                        {"renal-unknown": "warning"}, egfr=None, given="Grace", family="Adeyemi",
                        extra=[lab(sid, "egfr", 85, "@today-200d")]))
    sid = "renal-reduce-stale"
    s.append(spasticity(sid, "Last eGFR 45 was 200 days ago: reduce, and recheck creatinine",
                        {"renal-reduce": "warning"}, egfr=None, given="Irene", family="Castro",
                        extra=[lab(sid, "egfr", 45, "@today-200d")]))
    sid = "renal-entered-in-error"
    s.append(spasticity(sid, "An eGFR of 20 was entered in error and a preliminary 25 is pending; the final value is 80",
                        {}, egfr=None, given="Lena", family="Fischer",
                        extra=[lab(sid, "egfr", 80, "@today-30d"),
                               lab(sid, "egfr", 20, "@today-2d", status="entered-in-error", suffix="-error"),
                               lab(sid, "egfr", 25, "@today-1d", status="preliminary", suffix="-prelim")]))
    # --- electrolytes ---
    s.append(cramps("hypokalemia", "Cirrhosis on diuretics with cramps, potassium 3.2 meq/L, baclofen drafted",
                    {"hypokalemia": "warning"}, potassium=None, given="Frank", family="Doyle",
                    extra=[lab("hypokalemia", "potassium", 3.2, unit="meq/L")]))
    s.append(cramps("potassium-edge-3-5", "Cirrhosis with cramps, potassium exactly 3.5 meq/L",
                    {}, potassium=None, given="George", family="Hall",
                    extra=[lab("potassium-edge-3-5", "potassium", 3.5, unit="meq/L")]))
    s.append(cramps("hypomagnesemia", "Cirrhosis with cramps, magnesium 1.4 mg/dL (0.58 mmol/L), baclofen drafted",
                    {"hypomagnesemia": "warning"}, magnesium=None, given="Ivan", family="Horvat",
                    extra=[lab("hypomagnesemia", "magnesium", 1.4)]))
    s.append(cramps("magnesium-edge-mmol", "Cirrhosis with cramps, magnesium exactly 0.70 mmol/L",
                    {}, magnesium=0.70, given="Oscar", family="Nilsen"))
    s.append(cramps("magnesium-edge-mgdl", "Cirrhosis with cramps, magnesium 1.7 mg/dL (= 0.70 mmol/L)",
                    {}, magnesium=None, given="Peter", family="Quinn",
                    extra=[lab("magnesium-edge-mgdl", "magnesium", 1.7)]))
    sid = "magnesium-edge-meq"
    s.append(cramps(sid, "Magnesium 1.4 mEq/L (= 0.70 mmol/L) and potassium sent as unit text only",
                    {}, magnesium=None, potassium=None, given="Rita", family="Ortega", gender="female",
                    extra=[lab(sid, "magnesium_mmol", 1.4, unit="mEq/L"),
                           lab(sid, "potassium", 3.9, unit="mmol/L", code_unit=False)]))
    s.append(cramps("hypomagnesemia-renal", "Cramps with magnesium 0.55 mmol/L and eGFR 25: no magnesium oxide offered",
                    {"renal-avoid": "critical", "hypomagnesemia": "warning"}, magnesium=0.55, egfr=25,
                    given="Victor", family="Lam"))
    s.append(cramps("electrolytes-unknown", "Cirrhosis with cramps, no potassium or magnesium on record",
                    {"electrolytes-unknown": "info"}, potassium=None, magnesium=None,
                    given="Wendy", family="Brooks", gender="female"))
    sid = "electrolytes-stale"
    s.append(cramps(sid, "Cirrhosis with cramps, potassium and magnesium last checked 120 days ago",
                    {"electrolytes-unknown": "info"}, potassium=None, magnesium=None,
                    given="Xavier", family="Dubois",
                    extra=[lab(sid, "potassium", 4.0, "@today-120d"), lab(sid, "magnesium_mmol", 0.8, "@today-120d")]))
    # --- dosing ---
    sid = "dose-above-max-cramps"
    s.append(cramps(sid, "Cirrhosis cramps on 30 mg/day for 2 months, new order for 40 mg/day",
                    {"dose-above-max": "warning"}, given="Yusuf", family="Demir",
                    **change(sid, ("bac10", 1, 3), ("bac10", 1, 4), 60)))
    sid = "cirrhosis-next-steps"
    s.append(cramps(sid, "Cirrhosis cramps on 20 mg/day for 2 months, stepped up to the 30 mg/day ceiling",
                    {"cirrhosis-next-steps": "info"}, given="Zoe", family="Carter", gender="female",
                    **change(sid, ("bac10", 1, 2), ("bac10", 1, 3), 60)))
    sid = "dose-30-cramps-no-cirrhosis"
    s.append(cramps(sid, "Idiopathic cramps (no cirrhosis) stepped up to 30 mg/day: at the ceiling, no card",
                    {}, given="Anna", family="Berg", gender="female", liver=None,
                    **change(sid, ("bac10", 1, 2), ("bac10", 1, 3), 60)))
    sid = "dose-above-max-critical"
    s.append(spasticity(sid, "Severe spinal spasticity on 80 mg/day, new order for 90 mg/day",
                        {"dose-above-max": "critical"}, gender="male", given="Brian", family="Walsh",
                        **change(sid, ("bac20", 1, 4), ("bac10", 3, 3), 30, extra=[
                            order(sid, "first", "bac10", 1, 3, status="completed", authored="@today-200d")])))
    s.append(cramps("start-dose-high", "Cirrhosis cramps, first baclofen order at 10 mg twice daily (20 mg/day)",
                    {"start-dose-high": "warning"}, given="Carl", family="Jensen",
                    drafts=[order("start-dose-high", "draft", "bac10", 1, 2)]))
    sid = "titration-step"
    s.append(cramps(sid, "Idiopathic night cramps on 10 mg/day for a month, jumped to 30 mg/day",
                    {"titration-step": "warning"}, given="Derek", family="Moss", liver=None,
                    **change(sid, ("bac5", 1, 2), ("bac10", 1, 3), 30)))
    sid = "titration-too-soon"
    s.append(spasticity(sid, "MS spasticity: 15 mg/day started 2 days ago, already raised to 30 mg/day",
                        {"titration-step": "warning"}, given="Elena", family="Rossi",
                        **change(sid, ("bac5", 1, 3), ("bac10", 1, 3), 2)))
    sid = "titration-ok"
    s.append(cramps(sid, "Cirrhosis cramps on 10 mg/day for 10 days, raised by 10 to 20 mg/day: a proper step",
                    {}, given="Felix", family="Wagner",
                    **change(sid, ("bac5", 1, 2), ("bac10", 1, 2), 10)))
    s.append(spasticity("elderly-start", "Woman turning 65 today, starting baclofen for MS spasticity",
                        {"elderly-start": "info"}, born="@today-65y", given="Gloria", family="Nunez"))
    s.append(spasticity("elderly-edge", "Woman turning 65 tomorrow, starting baclofen for MS spasticity",
                        {}, born="@today-65y+1d", given="Hanna", family="Schmidt"))
    # --- course ---
    sid = "abrupt-stop"
    current = order(sid, "current", "bac20", 1, 3, status="active", authored="@today-200d")
    s.append(spasticity(sid, "Spinal cord injury on baclofen 60 mg/day for 200 days, order being stopped",
                        {"abrupt-stop": "warning"}, gender="male", given="Ian", family="Fraser",
                        extra=[current, condition(sid, "sci")], drafts=[{**current, "status": "stopped"}]))
    sid = "abrupt-stop-recent"
    current = order(sid, "current", "bac5", 1, 3, status="active", authored="@today-10d")
    s.append(spasticity(sid, "Baclofen started 10 days ago and stopped for drowsiness: no taper needed yet",
                        {}, given="Julia", family="Kowalski",
                        extra=[current], drafts=[{**current, "status": "stopped"}]))
    sid = "abrupt-stop-halving"
    s.append(spasticity(sid, "On baclofen 60 mg/day for 100 days, new order cuts it to 20 mg/day",
                        {"abrupt-stop": "warning"}, gender="male", given="Kevin", family="Murphy",
                        **change(sid, ("bac20", 1, 3), ("bac10", 1, 2), 100)))
    sid = "duplicate-therapy"
    s.append(spasticity(sid, "Active baclofen 15 mg/day, a second baclofen order drafted without replacing it",
                        {"duplicate-therapy": "warning"}, given="Laura", family="Price",
                        extra=[order(sid, "current", "bac5", 1, 3, status="active", authored="@today-60d")]))
    sid = "renewal-replaces"
    s.append(spasticity(sid, "Active baclofen 15 mg/day renewed by an order that replaces it (priorPrescription)",
                        {}, given="Monica", family="Reed",
                        **change(sid, ("bac5", 1, 3), ("bac5", 1, 3), 60)))
    sid = "tolerance"
    s.append(spasticity(sid, "On baclofen for 500 days (one course: each order renewed the last), dose raised from 30 to 40 mg/day",
                        {"tolerance": "info"}, gender="male", given="Nathan", family="Cole",
                        cards={"tolerance": {"summary": ["500 days", "30 -> 40 mg/day"], "suggestions": []}},
                        **change(sid, ("bac10", 1, 3), ("bac10", 1, 4), 60, extra=[
                            order(sid, "first", "bac5", 1, 3, status="completed", authored="@today-500d",
                                  **supplied(450))])))
    s += v2_stories()
    # --- drugs to avoid ---
    sid = "avoid-cyclobenzaprine"
    s.append(cramps(sid, "Cirrhosis with cramps: cyclobenzaprine drafted for the cramps",
                    {"avoid-cyclobenzaprine": "warning"}, given="Owen", family="Hughes",
                    drafts=[order(sid, "draft", "cyclobenzaprine", 1, 3)]))
    sid = "avoid-quinidine"
    s.append(cramps(sid, "Cramps despite baclofen 30 mg/day: quinidine drafted",
                    {"avoid-quinidine": "warning"}, given="Patrick", family="Byrne",
                    extra=[order(sid, "current", "bac10", 1, 3, status="active", authored="@today-90d")],
                    drafts=[order(sid, "draft", "quinidine", 1, 2)]))
    s.append(cramps("benzodiazepine-older-adult", "72-year-old with cirrhosis cramps: diazepam drafted (local code)",
                    {"benzodiazepine-older-adult": "warning"}, born="@today-72y", given="Queenie", family="Ford",
                    gender="female", drafts=[_local_diazepam("benzodiazepine-older-adult")]))
    s.append(cramps("benzodiazepine-younger", "64-year-old with cirrhosis cramps: diazepam drafted",
                    {}, born="@today-64y", given="Robert", family="Grant",
                    drafts=[_local_diazepam("benzodiazepine-younger")]))
    # --- indication ---
    sid = "not-indicated-rheumatic"
    s.append(spasticity(sid, "Fibromyalgia: baclofen drafted for muscle spasm",
                        {"not-indicated-rheumatic": "warning"}, given="Sofia", family="Marino",
                        extra=[condition(sid, "fibromyalgia")],
                        drafts=[order(sid, "draft", "bac5", 1, 3, **reason("fibromyalgia"))]))
    sid = "limited-efficacy-cerebral"
    s.append(spasticity(sid, "Post-stroke hemiplegia: baclofen drafted for the spasticity",
                        {"limited-efficacy-cerebral": "info"}, gender="male", given="Tomas", family="Silva",
                        extra=[condition(sid, "stroke")],
                        drafts=[order(sid, "draft", "bac5", 1, 3, **reason("stroke"))]))
    # --- forms and data ---
    sid = "oral-solution-ml"
    s.append(spasticity(sid, "Dysphagic MS patient: baclofen 1 mg/mL oral solution 10 mL three times daily (30 mg/day)",
                        {"start-dose-high": "warning"}, given="Ursula", family="Lang",
                        drafts=[order(sid, "draft", "bac_sol", 10, 3)]))
    sid = "intrathecal-ignored"
    s.append(spasticity(sid, "Intrathecal baclofen pump refill order in a patient with eGFR 20: not an oral order",
                        {}, egfr=20, gender="male", given="Vincent", family="Ito",
                        drafts=[order(sid, "draft", "bac_it", 0.5, 1)]))
    sid = "medication-contained"
    draft = order(sid, "draft", "bac10", 2, 3)
    del draft["medicationCodeableConcept"]
    draft["contained"] = [{"resourceType": "Medication", "id": "med",
                           "code": {"coding": [{"system": RXNORM, "code": "197391",
                                                "display": "Baclofen 10 MG Oral Tablet"}]}}]
    draft["medicationReference"] = {"reference": "#med"}
    s.append(spasticity(sid, "Baclofen 10 mg tablets (contained Medication), 2 tablets three times daily to start",
                        {"start-dose-high": "warning"}, given="Wanda", family="Young", drafts=[draft]))
    sid = "medication-reference"
    medication = {"resourceType": "Medication", "id": f"{sid}-med",
                  "code": {"coding": [{"system": "urn:oid:1.2.3.4.5", "code": "BAC-LOCAL"}],
                           "text": "BACLOFEN 10MG TAB"}}
    draft = order(sid, "draft", "bac10", 1, 3)
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": f"Medication/{sid}-med"}
    s.append(spasticity(sid, "Baclofen by local code and name only (Medication resource), 10 mg three times daily to start",
                        {"start-dose-high": "warning"}, given="Yara", family="Haddad",
                        extra=[medication], drafts=[draft]))
    failing = {"fires": {"data-unavailable": "warning"}, "silent": [t for t in TOPICS if t != "data-unavailable"]}
    s.append(cramps("data-unavailable", "Cirrhosis cramps, no kidney test on record; when the lab server fails"
                    " (eGFR timeout, creatinine HTTP 503) the renal checks cannot run",
                    {"renal-unknown": "warning"}, egfr=None, given="Zack", family="Ellis",
                    unavailable={"egfr": "timeout", "creatinine": "HTTP 503"}, expect_unavailable=failing))
    return s


def _local_diazepam(sid: str) -> dict:
    draft = order(sid, "draft", "bac5", 1, 2)
    draft["medicationCodeableConcept"] = {"coding": [{"system": "urn:oid:2.16.840.1.113883.19.5.2",
                                                      "code": "DZP5", "display": "DIAZEPAM 5 MG TAB"}],
                                          "text": "Diazepam 5 mg tablet"}
    return draft


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for item in with_seen(all_stories()):
        (OUT / f"{item['id']}.json").write_text(json.dumps(item, indent=2) + "\n", encoding="utf-8")



DELETE, CREATININE = [["delete"]], [["create 2160-0"]]
# What the clinician sees on the cards of stories written before catalog v2 (see `story`).
SEEN = {
    "abrupt-stop": {"abrupt-stop": {"summary": ["200 days"], "suggestions": [["update taper 50 to 5 mg/day"]]}},
    "abrupt-stop-halving": {"abrupt-stop": {"summary": ["60 -> 20 mg/day", "100 days"],
                                            "suggestions": [["update taper 50 to 20 mg/day"]]}},
    "avoid-cyclobenzaprine": {"avoid-cyclobenzaprine": {"suggestions": DELETE}},
    "avoid-quinidine": {"avoid-quinidine": {"suggestions": DELETE}},
    "benzodiazepine-older-adult": {"benzodiazepine-older-adult": {"summary": ["Age 72"], "suggestions": DELETE}},
    "cirrhosis-next-steps": {"cirrhosis-next-steps": {
        "summary": ["30 mg/day"], "second_choice": [1, 2],
        "suggestions": [["create 2160-0", "create 2951-2", "create 2823-3"], ["create albumin human"], ["create 7715"]]}},
    "data-unavailable": {"renal-unknown": {"suggestions": CREATININE}},
    "dose-above-max-cramps": {"dose-above-max": {"summary": ["40 mg/day", "30 mg/day"], "suggestions": [["update 30 mg/day"]]}},
    "dose-above-max-critical": {"dose-above-max": {"summary": ["90 mg/day", "80 mg/day"], "suggestions": [["update 80 mg/day"]]}},
    "duplicate-therapy": {"duplicate-therapy": {"summary": ["15 mg/day"], "suggestions": DELETE}},
    "egfr-comparator-ge-30": {"renal-reduce": {"summary": ["eGFR >=30"], "suggestions": [["update 5 mg/day"]]}},
    "egfr-comparator-gt-29": {"renal-avoid": {"summary": ["eGFR >29"], "suggestions": DELETE}},
    "egfr-comparator-lt-60": {"renal-reduce": {"summary": ["eGFR <60"], "suggestions": [["update 5 mg/day"]]}},
    "elderly-start": {"elderly-start": {"summary": ["Age 65", "5 mg up to three times daily"], "suggestions": []}},
    "electrolytes-stale": {"electrolytes-unknown": {"summary": ["90 days"], "suggestions": [["create 2823-3", "create 19123-9"]]}},
    "electrolytes-unknown": {"electrolytes-unknown": {"suggestions": [["create 2823-3", "create 19123-9"]]}},
    "hypokalemia": {"hypokalemia": {"summary": ["Potassium 3.2 mmol/L"], "suggestions": []}},
    "hypomagnesemia": {"hypomagnesemia": {"summary": ["Magnesium 0.58 mmol/L"], "suggestions": [["create 6582"]]}},
    "hypomagnesemia-renal": {"renal-avoid": {"summary": ["eGFR 25"], "suggestions": DELETE},
                             "hypomagnesemia": {"summary": ["0.55"], "suggestions": []}},
    "medication-contained": {"start-dose-high": {"summary": ["60 mg/day", "15 mg/day"], "suggestions": [["update 15 mg/day"]]}},
    "medication-reference": {"start-dose-high": {"summary": ["30 mg/day"], "suggestions": [["update 15 mg/day"]]}},
    "oral-solution-ml": {"start-dose-high": {"summary": ["30 mg/day"], "suggestions": [["update 15 mg/day"]]}},
    "pediatric-creatinine-only": {"renal-unknown": {"suggestions": CREATININE},
                                  "pediatric-dosing": {"summary": ["Age 12"], "suggestions": []}},
    "renal-amended-counts": {"renal-avoid": {"summary": ["eGFR 25"], "suggestions": DELETE}},
    "renal-avoid": {"renal-avoid": {"summary": ["eGFR 24"], "suggestions": DELETE}},
    "renal-avoid-creatinine-mgdl": {"renal-avoid": {"summary": ["eGFR 24.8"], "suggestions": DELETE}},
    "renal-avoid-dialysis": {"renal-avoid": {"summary": ["Dialysis"], "suggestions": DELETE}},
    "renal-creatinine-unit-only": {"renal-reduce": {"summary": ["eGFR 40.6"], "suggestions": [["update 5 mg/day"]]}},
    "renal-edge-30": {"renal-reduce": {"summary": ["eGFR 30", "15 mg/day"], "suggestions": [["update 5 mg/day"]]}},
    "renal-gender-unknown": {"renal-reduce": {"summary": ["eGFR 59.3"], "suggestions": [["update 5 mg/day"]]}},
    "renal-reduce-creatinine-umol": {"renal-reduce": {"summary": ["eGFR 55.8"], "suggestions": [["update 5 mg/day"]]}},
    "renal-reduce-stale": {"renal-reduce": {"summary": ["eGFR 45"], "suggestions": [["update 5 mg/day"], ["create 2160-0"]]}},
    "renal-unknown-none": {"renal-unknown": {"summary": ["No eGFR or creatinine"], "suggestions": CREATININE}},
    "renal-unknown-stale": {"renal-unknown": {"summary": ["eGFR 85", "180 days"], "suggestions": CREATININE}},
    "sandbox-pill-20mg": {"start-dose-high": {"summary": ["60 mg/day", "15 mg/day"], "suggestions": [["update 15 mg/day"]]}},
    "start-dose-high": {"start-dose-high": {"summary": ["20 mg/day", "10 mg/day"], "suggestions": [["update 10 mg/day"]]}},
    "titration-step": {"titration-step": {"summary": ["10 -> 30 mg/day"], "suggestions": [["update 20 mg/day"]]}},
    "cerebral-problem-list": {"limited-efficacy-cerebral": {"suggestions": []}},
    "limited-efficacy-cerebral": {"limited-efficacy-cerebral": {"suggestions": []}},
    "not-indicated-rheumatic": {"not-indicated-rheumatic": {"suggestions": []}},
    "dialysis-procedure-old": {"renal-unknown": {"suggestions": CREATININE}},
    "titration-too-soon": {"titration-step": {"summary": ["15 -> 30 mg/day", "2 days"], "suggestions": [["update 15 mg/day"]]}},
}


def with_seen(stories: list[dict]) -> list[dict]:
    for item in stories:
        if item["id"] in SEEN:
            item["expect"]["cards"] = {**SEEN[item["id"]], **item["expect"].get("cards", {})}
    return stories


def v2_stories() -> list[dict]:
    """Catalog version 2: each new behaviour and its near miss."""
    s = []
    # --- rule 1: taper for established therapy, delete for a new course ---
    sid = "renal-avoid-established"
    current = order(sid, "current", "bac20", 1, 3, status="active", authored="@today-2y")
    s.append(spasticity(sid, "Spinal cord injury on baclofen 60 mg/day for two years, eGFR now 22, order renewed",
                        {"renal-avoid": "critical"}, egfr=22, gender="male", given="Arthur", family="Quayle",
                        diagnosis="sci", extra=[current],
                        drafts=[order(sid, "draft", "bac20", 1, 3, **replaces(sid, "current"))],
                        cards={"renal-avoid": {"summary": ["eGFR 22"], "second_choice": [1],
                                               "suggestions": [["update taper 50 to 5 mg/day"], ["delete"]]}}))
    sid = "renal-avoid-course-13-days"
    s.append(spasticity(sid, "Baclofen 15 mg/day started 13 days ago, eGFR now 22: not yet established, remove",
                        {"renal-avoid": "critical"}, egfr=22, given="Beatrice", family="Lowe",
                        cards={"renal-avoid": {"summary": ["eGFR 22"], "suggestions": [["delete"]],
                                               "second_choice": []}},
                        **change(sid, ("bac5", 1, 3), ("bac5", 1, 3), 13)))
    # --- rule 2: adjusted orders, deep cuts taper ---
    sid = "renal-reduce-adjusted"
    s.append(spasticity(sid, "eGFR 45: baclofen 30 mg/day for 100 days already halved to 15 mg/day",
                        {}, egfr=45, given="Cecil", family="Marr",
                        **change(sid, ("bac10", 1, 3), ("bac5", 1, 3), 100)))
    sid = "renal-reduce-deep-cut"
    s.append(spasticity(sid, "eGFR 45: baclofen 30 mg/day for 100 days, renewed at 20 mg/day: the renal half is a deep cut",
                        {"renal-reduce": "warning"}, egfr=45, given="Dora", family="Neville",
                        cards={"renal-reduce": {"summary": ["eGFR 45", "20 mg/day"],
                                                "suggestions": [["update taper 25 to 10 mg/day"]]}},
                        **change(sid, ("bac10", 1, 3), ("bac10", 1, 2), 100)))
    s.append(spasticity("renal-reduce-minimum", "eGFR 45, new patient starting baclofen 5 mg once daily: already the lowest dose",
                        {}, egfr=45, given="Edgar", family="Olsen",
                        drafts=[order("renal-reduce-minimum", "draft", "bac5", 1, 1)]))
    sid = "renal-reduce-minimum-renewal"
    s.append(spasticity(sid, "eGFR 45, baclofen 5 mg/day for 60 days renewed unchanged: already the lowest dose",
                        {}, egfr=45, given="Enid", family="Pratt",
                        **change(sid, ("bac5", 1, 1), ("bac5", 1, 1), 60)))
    sid = "same-id-change"
    current = order(sid, "current", "bac5", 1, 3, status="active", authored="@today-60d")
    s.append(spasticity(sid, "The draft carries the active order's id (no link) and raises 15 to 40 mg/day: a change, not a duplicate",
                        {"titration-step": "warning"}, given="Flora", family="Quist", extra=[current],
                        drafts=[{**order(sid, "current", "bac10", 1, 4), "id": current["id"]}],
                        cards={"titration-step": {"summary": ["15 -> 40 mg/day"], "suggestions": [["update 30 mg/day"]]}}))
    # --- rule 5: no magnesium oxide without a usable renal value ---
    s.append(cramps("hypomagnesemia-no-renal", "Cirrhosis cramps, magnesium 0.55 mmol/L, no renal value on record",
                    {"hypomagnesemia": "warning", "renal-unknown": "warning"}, magnesium=0.55, egfr=None,
                    given="Fiona", family="Pryce",
                    cards={"renal-unknown": {"suggestions": [["create 2160-0"]]},
                           "hypomagnesemia": {"summary": ["0.55"], "suggestions": []}}))
    # --- lapsed course (rules 8, 9) ---
    sid = "lapsed-course"
    s.append(spasticity(sid, "Baclofen 30 mg/day ended 20 days ago (no active order); restarted at 60 mg/day",
                        {"titration-step": "warning"}, given="Gideon", family="Rhys", gender="male",
                        extra=[order(sid, "previous", "bac10", 1, 3, status="completed", authored="@today-60d",
                                     **supplied(40))],
                        drafts=[order(sid, "draft", "bac20", 1, 3)],
                        cards={"titration-step": {"summary": ["30 -> 60 mg/day"],
                                                  "suggestions": [["update 45 mg/day"]]}}))
    sid = "lapsed-course-gap"
    s.append(spasticity(sid, "Baclofen 30 mg/day ended 40 days ago: a restart at 60 mg/day is a new start",
                        {"start-dose-high": "warning"}, given="Hilda", family="Stone",
                        extra=[order(sid, "previous", "bac10", 1, 3, status="completed", authored="@today-70d",
                                     **supplied(30))],
                        drafts=[order(sid, "draft", "bac20", 1, 3)],
                        cards={"start-dose-high": {"summary": ["60 mg/day", "15 mg/day"],
                                                   "suggestions": [["update 15 mg/day"]]}}))
    # --- rule 12: duplicate drafts; rule 7: combined dose ---
    sid = "duplicate-drafts"
    s.append(spasticity(sid, "Two baclofen 5 mg three times daily orders drafted in one request",
                        {"duplicate-therapy": "warning"}, given="Igor", family="Tanaka", gender="male",
                        drafts=[order(sid, "draft", "bac5", 1, 3), order(sid, "draft-2", "bac5", 1, 3)],
                        cards={"duplicate-therapy": {"summary": ["+1 more order"],
                                                     "suggestions": [["delete"], ["delete"]]}}))
    sid = "duplicate-other-draft"
    s.append(cramps(sid, "Order-select: baclofen 10 mg twice daily selected while another baclofen 10 mg twice daily is drafted",
                    {"duplicate-therapy": "warning", "dose-above-max": "warning", "start-dose-high": "warning"},
                    given="Jasper", family="Umber",
                    drafts=[order(sid, "draft", "bac10", 1, 2)], other_drafts=[order(sid, "draft-2", "bac10", 1, 2)],
                    # order-select judges only the selected draft; the other hooks sign both.
                    cards_by_hook={hook: {"duplicate-therapy": {"suggestions": DELETE * count},
                                          "dose-above-max": {"summary": ["40 mg/day"], "suggestions": []}}
                                   for hook, count in (("order-select", 1), ("order-sign", 2),
                                                       ("medication-prescribe", 2))}))
    sid = "dose-combined-active"
    s.append(cramps(sid, "Cirrhosis cramps on 20 mg/day; a second 20 mg/day order drafted without replacing it (40 mg/day in all)",
                    {"dose-above-max": "warning", "duplicate-therapy": "warning"}, given="Karl", family="Vance",
                    extra=[order(sid, "current", "bac10", 1, 2, status="active", authored="@today-60d")],
                    drafts=[order(sid, "draft", "bac10", 1, 2)],
                    cards={"dose-above-max": {"summary": ["40 mg/day", "30 mg/day"], "suggestions": []},
                           "duplicate-therapy": {"suggestions": [["delete"]]}}))
    sid = "dose-combined-linked"
    s.append(cramps(sid, "Cirrhosis cramps on 20 mg/day, renewed at 20 mg/day by an order that replaces it",
                    {}, given="Lars", family="Webb", **change(sid, ("bac10", 1, 2), ("bac10", 1, 2), 60)))
    # --- lab statuses, comparators, unusable values ---
    for suffix, comparator, value, fires in (("gt-29", ">", 29, {"renal-avoid": "critical"}),
                                             ("ge-30", ">=", 30, {"renal-reduce": "warning"}),
                                             ("lt-60", "<", 60, {"renal-reduce": "warning"}),
                                             ("ge-60", ">=", 60, {})):
        sid = f"egfr-comparator-{suffix}"
        s.append(spasticity(sid, f"eGFR reported as '{comparator}{value}'", fires, egfr=None,
                            given="Mila", family="Xu", extra=[lab(sid, "egfr", value, comparator=comparator)]))
    sid = "renal-registered-ignored"
    s.append(spasticity(sid, "A registered eGFR of 20 (no result yet) and a final 80: only the final one counts",
                        {}, egfr=None, given="Nora", family="Yates",
                        extra=[lab(sid, "egfr", 80, "@today-30d"),
                               lab(sid, "egfr", 20, "@today-1d", status="registered", suffix="-registered")]))
    sid = "renal-amended-counts"
    s.append(spasticity(sid, "An amended eGFR of 25 after a final 80: the amended one counts",
                        {"renal-avoid": "critical"}, egfr=None, given="Otto", family="Zane",
                        extra=[lab(sid, "egfr", 80, "@today-30d"),
                               lab(sid, "egfr", 25, "@today-1d", status="amended", suffix="-amended")]))
    sid = "creatinine-no-unit"
    s.append(spasticity(sid, "The only creatinine (1.9) came without a unit: it cannot be read",
                        {"renal-unknown": "warning"}, egfr=None, given="Pia", family="Abbott",
                        extra=[lab(sid, "creatinine", 1.9, "@today-5d", no_unit=True)],
                        cards={"renal-unknown": {"summary": ["could not be read (no unit)"],
                                                 "suggestions": [["create 2160-0"]]}}))
    # --- conditions and procedures ---
    sid = "dialysis-refuted"
    s.append(spasticity(sid, "Dialysis dependence on the problem list was refuted; eGFR 85",
                        {}, egfr=85, given="Quentin", family="Baird",
                        extra=[condition(sid, "dialysis", verification="refuted")]))
    sid = "dialysis-procedure"
    s.append(spasticity(sid, "No renal condition on the problem list, but haemodialysis was performed 5 days ago",
                        {"renal-avoid": "critical"}, egfr=None, given="Rosa", family="Cheng", diagnosis="sci",
                        extra=[procedure(sid, "hemodialysis", "@today-5d")],
                        cards={"renal-avoid": {"summary": ["Dialysis"], "suggestions": [["delete"]]}}))
    sid = "dialysis-procedure-old"
    s.append(spasticity(sid, "Haemodialysis last performed 40 days ago, no renal value on record",
                        {"renal-unknown": "warning"}, egfr=None, given="Simon", family="Drake", diagnosis="sci",
                        extra=[procedure(sid, "hemodialysis_cpt", "@today-40d")]))
    sid = "cerebral-problem-list"
    s.append(spasticity(sid, "Baclofen for plain spasticity; the problem list shows a stroke and no spinal cause",
                        {"limited-efficacy-cerebral": "info"}, given="Tara", family="Evans", diagnosis="stroke",
                        drafts=[order(sid, "draft", "bac5", 1, 3, **reason("spasticity", SNOMED))]))
    sid = "cerebral-with-ms"
    s.append(spasticity(sid, "Baclofen for plain spasticity; stroke and multiple sclerosis on the problem list",
                        {}, given="Ugo", family="Ferri", diagnosis="stroke", extra=[condition(sid, "ms")],
                        drafts=[order(sid, "draft", "bac5", 1, 3, **reason("spasticity", SNOMED))]))
    # --- adults ---
    sid = "pediatric-dosing"
    s.append(spasticity(sid, "12-year-old with spinal cord injury: baclofen 60 mg/day drafted",
                        {"pediatric-dosing": "info"}, born="@today-12y", egfr=110, diagnosis="sci",
                        given="Vera", family="Gray", drafts=[order(sid, "draft", "bac20", 3, 1)],
                        cards={"pediatric-dosing": {"summary": ["Age 12"], "suggestions": []}}))
    sid = "adult-18-today"
    s.append(spasticity(sid, "18 today, spinal cord injury: baclofen 60 mg/day drafted",
                        {"start-dose-high": "warning"}, born="@today-18y", egfr=110, diagnosis="sci",
                        given="Wes", family="Hart", drafts=[order(sid, "draft", "bac20", 3, 1)],
                        cards={"start-dose-high": {"suggestions": [["update 15 mg/day"]]}}))
    sid = "pediatric-creatinine-only"
    s.append(spasticity(sid, "12-year-old with only a creatinine on record: no CKD-EPI under 18",
                        {"pediatric-dosing": "info", "renal-unknown": "warning"}, born="@today-12y", egfr=None,
                        diagnosis="sci", given="Xena", family="Irwin",
                        extra=[lab(sid, "creatinine", 0.5, "@today-5d")]))
    # --- rules 18, 19: established therapy and the course ---
    sid = "cirrhosis-first-order-30"
    s.append(cramps(sid, "Cirrhosis cramps, first-ever baclofen order at 30 mg/day: start low, no next steps yet",
                    {"start-dose-high": "warning"}, given="Yves", family="Jones",
                    drafts=[order(sid, "draft", "bac10", 1, 3)],
                    cards={"start-dose-high": {"summary": ["30 mg/day", "10 mg/day"],
                                               "suggestions": [["update 10 mg/day"]]}}))
    sid = "tolerance-80-days"
    s.append(spasticity(sid, "On baclofen for 80 days, dose raised from 30 to 40 mg/day: too early for tolerance",
                        {}, gender="male", given="Zeno", family="King",
                        **change(sid, ("bac10", 1, 3), ("bac10", 1, 4), 80)))
    # --- reading doses: Medication.ingredient strength, the step of a taper in force ---
    sid = "medication-ingredient-strength"
    medication = {"resourceType": "Medication", "id": f"{sid}-med",
                  "code": {"coding": [{"system": "urn:oid:1.2.3.4.5", "code": "BAC-T"}], "text": "Baclofen tablet"},
                  "ingredient": [{"itemCodeableConcept": {"text": "baclofen"},
                                  "strength": {"numerator": {"value": 10, "unit": "mg", "system": UCUM, "code": "mg"},
                                               "denominator": {"value": 1, "unit": "tablet", "system": UCUM,
                                                               "code": "{tbl}"}}}]}
    draft = order(sid, "draft", "bac10", 2, 3)
    del draft["medicationCodeableConcept"]
    draft["medicationReference"] = {"reference": f"Medication/{sid}-med"}
    s.append(spasticity(sid, "Local baclofen tablet whose strength (10 mg) is only in Medication.ingredient: 2 tablets three times daily to start",
                        {"start-dose-high": "warning"}, given="Gus", family="Moreau", extra=[medication],
                        drafts=[draft],
                        cards={"start-dose-high": {"summary": ["60 mg/day"], "suggestions": [["update 15 mg/day"]]}}))
    for suffix, tablets, fires, seen in (
            ("cut", 2, {"abrupt-stop": "warning"},
             {"abrupt-stop": {"summary": ["50 -> 20 mg/day"], "suggestions": [["update taper 40 to 20 mg/day"]]}}),
            ("kept", 3, {}, None)):
        sid = f"taper-in-force-{suffix}"
        first = order(sid, "first", "bac20", 1, 3, status="completed", authored="@today-200d", **supplied(196))
        taper = order(sid, "current", "bac10", 1, 3, status="active", authored="@today-4d",
                      **replaces(sid, "first"))
        step = taper["dosageInstruction"][0]
        taper["dosageInstruction"] = [
            {**step, "sequence": n, "text": f"{count} tablets", "doseAndRate": [{"doseQuantity": {
                "value": count, "unit": "tbl", "system": UCUM, "code": "{tbl}"}}],
             "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                                   **({"boundsDuration": {"value": 3, "unit": "days", "system": UCUM, "code": "d"}}
                                      if days else {})}}}
            for n, count, days in ((1, 6, True), (2, 5, True), (3, 4, False))]
        s.append(spasticity(sid, f"Tapering 60 -> 50 -> 40 mg/day (today: 50), renewed at {tablets * 10} mg/day",
                            fires, gender="male", given="Hugo", family="Nash", diagnosis="sci",
                            extra=[first, taper], cards=seen,
                            drafts=[order(sid, "draft", "bac10", 1, tablets, **replaces(sid, "current"))]))
    sid = "tolerance-same-dose"
    s.append(spasticity(sid, "On baclofen for 500 days (one course), renewed at the same 30 mg/day: no tolerance note",
                        {}, gender="male", given="Abel", family="Lund",
                        **change(sid, ("bac10", 1, 3), ("bac10", 1, 3), 60, extra=[
                            order(sid, "first", "bac5", 1, 3, status="completed", authored="@today-500d",
                                  **supplied(450))])))
    return s


if __name__ == "__main__":
    main()
