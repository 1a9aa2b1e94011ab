"""Rule 21 (patient-view): the seed's "cramps while on baclofen" algorithm, walked for this
patient. One info card lists the six steps, each marked done, now, next, later, not for this
patient, or could not be checked, with one-click suggestions for what is due now."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .. import actions
from ..cardbuilder import Finding
from ..dose_writer import write_daily_dose
from ..facts import Facts
from ..hookdata import (CONDITIONS, CREATININE, EGFR, MAGNESIUM, MEDS, PATIENT, POTASSIUM,
                        PROCEDURES)
from ..indication import CRAMPS, indication, reason_concepts
from ..medication import Order
from ..therapy import latest_authored, total_dose
from .base import mg, rule
from .indication import _albumin, _albumin_range, _orphenadrine

PATIENT_VIEW = "patient-view"
DONE, NOW, NEXT, LATER, SKIP, UNKNOWN = (
    "done", "now", "next", "later", "not for this patient", "could not be checked")
TOPIC = "cramps-next-steps"
GATE_DATA = {PATIENT: "age", MEDS: "current medications", CONDITIONS: "problem list"}
LAB_DATA = {"potassium": POTASSIUM, "magnesium": MAGNESIUM}


@dataclass
class Step:
    title: str
    status: str
    text: str
    suggestions: list = field(default_factory=list)
    headline: str = ""  # for the summary, when this step decides what is next

    def markdown(self, number: int) -> str:
        return f"{number}. **{self.title}: {self.status}.** {self.text}"


@dataclass(frozen=True)
class Renal:
    kind: str  # avoid | reduce | normal | unknown | failed
    text: str  # what the card says about it
    cap: float  # the highest daily dose this patient may reach (mg/day)


@dataclass(frozen=True)
class Course:
    orders: list[Order]  # the active oral baclofen orders
    d0: float | None
    last_change: datetime | None
    renal: Renal

    @property
    def at_max(self) -> bool:
        return self.d0 is not None and self.d0 >= self.renal.cap


@rule(21, TOPIC, "info",
      "patient-view only: adult with active oral baclofen therapy, indication cramps, and an"
      " active muscle-cramp Condition",
      "one card walking the cramps algorithm: increase by {dosing.step_cramps_mg} mg/day every"
      " {dosing.step_interval_cramps_days} days up to {dosing.ceiling_cramps_mg} mg/day"
      " (MedicationRequest proposal; avoid at eGFR < {renal.avoid_below_egfr} or dialysis, half"
      " the ceiling at eGFR < {renal.reduce_below_egfr}); physical measures; potassium and"
      " magnesium (ServiceRequests); at the maximum: albumin {albumin.low_g}-{albumin.high_g}"
      " g/week, orphenadrine (not at age >= {age.older_adult_years}) and monitoring with"
      " cirrhosis, else methocarbamol (not at age >= {age.older_adult_years}); specialist"
      " referral (ServiceRequest, SNOMED {cramps_next_steps.referral_snomed})")
def cramps_next_steps(facts: Facts):
    if facts.data.hook != PATIENT_VIEW or not _may_apply(facts):
        return None
    blocked = [key for key in GATE_DATA if key in facts.unavailable]
    if blocked or facts.adult is None:
        return _cannot_walk(facts, blocked)
    if not _for_cramps(facts):
        return None
    course = _course(facts)
    steps = [_titration(facts, course), _physical(facts), _electrolytes(facts)]
    ordered = {lab for step in steps for lab in _ordered_labs(step)}
    steps += [_cirrhosis(facts, course, ordered), _muscle_relaxant(facts, course),
              _referral(facts, course)]
    return Finding(TOPIC, "info", _summary(course, steps),
                   "\n".join(step.markdown(number) for number, step in enumerate(steps, 1)),
                   [s for step in steps for s in step.suggestions if s], selection="any")


# --- who the card is for -----------------------------------------------------------------

def _may_apply(facts: Facts) -> bool:
    """False only when something read says the card is not for this patient."""
    if facts.adult is False or facts.active == []:
        return False
    return CONDITIONS in facts.unavailable or "cramps" in facts.active_conditions


def _for_cramps(facts: Facts) -> bool:
    for order in facts.active:
        reason, has_reason = reason_concepts(order.resource, facts.condition_concepts, facts.knowledge)
        if indication(reason, has_reason, facts.active_conditions) != CRAMPS:
            return False
    return True


def _cannot_walk(facts: Facts, blocked: list[str]) -> Finding:
    missing = [f"{GATE_DATA[key]} ({facts.unavailable[key]})" for key in blocked]
    if facts.adult is None and PATIENT not in blocked:
        missing.append("age (no birth date on record)")
    return Finding(
        TOPIC, "info", f"Next steps for cramps on baclofen could not be checked: {missing[0]}",
        "The next steps for muscle cramps on baclofen could not be worked out because this data"
        f" could not be read: {'; '.join(missing)}. Review the baclofen dose, renal function,"
        " potassium and magnesium by hand.")


# --- the course and its renal limit ------------------------------------------------------

def _course(facts: Facts) -> Course:
    orders = facts.active
    return Course(orders, total_dose(orders), latest_authored(orders), _renal(facts))


def _renal(facts: Facts) -> Renal:
    knowledge = facts.knowledge
    ceiling = knowledge.value("dosing", "ceiling_cramps_mg")
    value = facts.renal
    if facts.dialysis:
        return Renal("avoid", "dialysis or end-stage renal disease", 0)
    if facts.renal_query_failed:
        failed = [facts.unavailable[k] for k in (EGFR, CREATININE, PATIENT) if k in facts.unavailable]
        return Renal("failed", f"renal function could not be read ({failed[0]})", ceiling)
    if PROCEDURES in facts.unavailable:
        return Renal("failed", "dialysis procedures could not be read"
                     f" ({facts.unavailable[PROCEDURES]})", ceiling)
    if value is None or facts.renal_stale:
        days = knowledge.value("renal", "lookback_days")
        return Renal("unknown", f"no renal value in the last {days:g} days", ceiling)
    if value.egfr < knowledge.value("renal", "avoid_below_egfr"):
        return Renal("avoid", value.label(), 0)
    if value.egfr < knowledge.value("renal", "reduce_below_egfr"):
        cap = ceiling * knowledge.value("renal", "reduction_fraction")
        return Renal("reduce", f"{value.label()}: at most {mg(cap)}, half the {mg(ceiling)}"
                     " ceiling", cap)
    return Renal("normal", value.label(), ceiling)


# --- step 1: the baclofen dose -----------------------------------------------------------

def _titration(facts: Facts, course: Course) -> Step:
    title = "Optimise the baclofen dose"
    d0, renal = course.d0, course.renal
    if renal.kind == "avoid":
        return Step(title, NOW, f"Avoid baclofen: {renal.text} (neurotoxicity). Do not increase;"
                    " reduce it gradually with the prescriber (never stop abruptly: hallucinations,"
                    " seizures), or seek urgent review if there are signs of toxicity (confusion,"
                    " drowsiness).", headline=f"avoid baclofen ({renal.text})")
    if d0 is None:
        return Step(title, UNKNOWN, "The daily dose of the active baclofen order(s) could not be"
                    " read: review it before any change.", headline="dose unreadable, review it")
    if d0 >= renal.cap:
        return _at_limit(title, d0, renal)
    if renal.kind in ("failed", "unknown"):
        return _renal_first(facts, title, d0, renal)
    allowed_from = _next_change_allowed(facts, course)
    if allowed_from:
        days = (facts.now.date() - course.last_change.date()).days  # calendar days, as the date shown
        return Step(title, NEXT, f"Baclofen {mg(d0)}; the dose was last changed"
                    f" {_day(course.last_change)} ({days} days ago): the next increase is due"
                    f" from {_day(allowed_from)} (at most every"
                    f" {_cramps('step_interval_cramps_days', facts):g} days).",
                    headline=f"next increase from {_day(allowed_from)}")
    return _increase(facts, title, course)


def _limit_name(renal: Renal) -> str:
    return "the renal limit" if renal.kind == "reduce" else "the maximum for cramps"


def _at_limit(title: str, d0: float, renal: Renal) -> Step:
    limit = _limit_name(renal)
    if d0 > renal.cap:
        return Step(title, NOW, f"Baclofen {mg(d0)} is above {limit} ({mg(renal.cap)};"
                    f" {renal.text}): do not increase; reduce towards {mg(renal.cap)}.",
                    headline=f"above {limit} of {mg(renal.cap)}")
    return Step(title, DONE, f"Baclofen {mg(d0)} is {limit} ({renal.text}).")


def _renal_first(facts: Facts, title: str, d0: float, renal: Renal) -> Step:
    text = f"Baclofen {mg(d0)}; {renal.text}: no increase is suggested until that is known."
    if renal.kind == "failed":
        return Step(title, UNKNOWN, text + " Check it by hand.", headline="renal function unknown")
    order = actions.suggestion("Order serum creatinine", actions.order_lab(facts, "creatinine"))
    return Step(title, NOW, text + " Check serum creatinine first.", [order],
                headline="check renal function before increasing")


def _next_change_allowed(facts: Facts, course: Course) -> datetime | None:
    """The date from which a dose step is allowed, when that is still in the future."""
    if course.last_change is None:
        return None
    allowed = course.last_change + timedelta(days=_cramps("step_interval_cramps_days", facts))
    return allowed if allowed > facts.now else None


def _increase(facts: Facts, title: str, course: Course) -> Step:
    d0, renal = course.d0, course.renal
    step = _cramps("step_cramps_mg", facts)
    grain = facts.knowledge.value("renal", "reduced_dose_step_mg")
    target = min(d0 + step, math.floor(renal.cap / grain) * grain)
    proposal = _dose_proposal(facts, course, target)
    limit = _limit_name(renal)
    then = (f", then by {step:g} mg/day every {_cramps('step_interval_cramps_days', facts):g}"
            f" days up to {mg(renal.cap)} ({limit})" if target < renal.cap else f" ({limit})")
    text = (f"Baclofen {mg(d0)} ({renal.text}): increase to {mg(target)}{then} while cramps"
            " persist and side effects allow (dizziness, somnolence, confusion, weakness).")
    if proposal is None:
        text += " The new dose could not be written from the current order: prescribe it by hand."
    suggestion = actions.suggestion(f"Propose baclofen {mg(target)}", proposal)
    return Step(title, NOW, text, [suggestion], headline=f"increase to {mg(target)}")


def _dose_proposal(facts: Facts, course: Course, target: float) -> dict | None:
    """A new MedicationRequest (intent proposal) at the target, written from the latest order."""
    latest = max(course.orders, key=lambda o: o.authored or datetime.min.replace(tzinfo=facts.now.tzinfo))
    written = write_daily_dose(latest.resource, target, latest.strength, facts.knowledge)
    if written is None:
        return None
    resource = {k: v for k, v in written.resource.items()
                if k not in ("id", "meta", "identifier", "dispenseRequest", "text")}
    resource.update(status="draft", intent="proposal", authoredOn=facts.now.date().isoformat())
    if latest.id:
        resource["priorPrescription"] = {"reference": f"MedicationRequest/{latest.id}"}
    replaced = "the active baclofen orders" if len(course.orders) > 1 else "the active order"
    return {"type": "create", "resource": resource,
            "description": f"New order replacing {replaced} ({mg(course.d0)}): {written.description}"}


# --- steps 2 and 3: physical measures, electrolytes --------------------------------------

def _physical(facts: Facts) -> Step:
    measures = facts.knowledge.value("cramps_next_steps", "physical_measures")
    return Step("Physical measures", NOW, measures[0].upper() + measures[1:] + ".",
                headline="stretching, ice")


def _electrolytes(facts: Facts) -> Step:
    lines, missing, statuses = [], [], set()
    for lab, key in LAB_DATA.items():
        line, status = _electrolyte(facts, lab, key)
        lines.append(line)
        statuses.add(status)
        if status == NOW and facts.recent_lab(lab) is None:
            missing.append(lab)
    status = next(s for s in (UNKNOWN, NOW, DONE) if s in statuses)
    suggestion = actions.suggestion(f"Order {' and '.join(missing)}",
                                    *(actions.order_lab(facts, lab) for lab in missing)) if missing else None
    return Step("Potassium and magnesium", status, " ".join(lines), [suggestion],
                headline="check electrolytes" if missing else "")


def _electrolyte(facts: Facts, lab: str, key: str) -> tuple[str, str]:
    if key in facts.unavailable:
        return f"{lab.capitalize()} could not be read ({facts.unavailable[key]}): check it by hand.", UNKNOWN
    value = facts.recent_lab(lab)
    days = facts.knowledge.value("electrolytes", "lookback_days")
    if value is None:
        return f"No {lab} result in the last {days:g} days: order it.", NOW
    limit = facts.knowledge.value("electrolytes", f"{lab}_below_mmol_l")
    if value.value < limit:
        return (f"{lab.capitalize()} {value.label()} is below {limit:g} mmol/L: correct it"
                f"{_magnesium_note(facts) if lab == 'magnesium' else ''}.", NOW)
    return f"{lab.capitalize()} {value.label()} is normal.", DONE


def _magnesium_note(facts: Facts) -> str:
    mgo = facts.knowledge["magnesium_oxide"]
    return (f" (e.g. {mgo['display']} {mgo['dose_mg']:g} mg, {mgo['dose_mmol']:g} mmol, at night;"
            " extreme caution in renal insufficiency)")


def _ordered_labs(step: Step) -> set[str]:
    return {action["resource"]["code"]["coding"][0]["code"]
            for s in step.suggestions if s for action in s["actions"]
            if action["resource"].get("resourceType") in ("ServiceRequest", "ProcedureRequest")}


# --- steps 4-6: at the maximum dose ------------------------------------------------------

def _cirrhosis(facts: Facts, course: Course, ordered: set[str]) -> Step:
    title = "With liver disease: albumin"
    if not facts.cirrhosis:
        return Step(title, SKIP, "No cirrhosis on the problem list.")
    if course.renal.kind == "avoid":
        return Step(title, LATER, "Decide with the specialist (step 6) while baclofen must be avoided.")
    days = facts.knowledge.value("orders", "cirrhosis_monitoring_days")
    plan = (f"human albumin {_albumin_range(facts)} g/week; orphenadrine as an alternative;"
            f" monitor creatinine, sodium and potassium during the first {days:g} days")
    if not _maximum_reached(course):
        return Step(title, LATER, f"If cramps persist at {mg(course.renal.cap)}: {plan}.")
    suggestions = [actions.suggestion(f"Propose albumin {_albumin_range(facts)} g/week",
                                      _albumin(facts), recommended=False)]
    text = f"Cramps persist at {mg(course.d0)}: {plan}."
    headline = "albumin, monitoring"
    if facts.older_adult:
        text += f" Orphenadrine is not suggested at age {facts.age} (Beers 2023: anticholinergic)."
    else:
        suggestions.append(actions.suggestion("Propose orphenadrine", _orphenadrine(facts),
                                              recommended=False))
        headline = "albumin, orphenadrine, monitoring"
    suggestions.append(_monitoring(facts, days, ordered))
    return Step(title, NOW, text, suggestions, headline=headline)


def _monitoring(facts: Facts, days: int, ordered: set[str]) -> dict | None:
    orders = facts.knowledge["orders"]
    labs = [lab for lab in ("creatinine", "sodium", "potassium") if orders[lab] not in ordered]
    return actions.suggestion(f"Monitor {', '.join(labs)} within {days:g} days",
                              *(actions.order_lab(facts, lab, days) for lab in labs))


def _muscle_relaxant(facts: Facts, course: Course) -> Step:
    title = "Without liver disease: methocarbamol"
    if facts.cirrhosis:
        return Step(title, SKIP, "Cirrhosis: step 4 applies instead.")
    if course.renal.kind == "avoid":
        return Step(title, LATER, "Decide with the specialist (step 6) while baclofen must be avoided.")
    if not _maximum_reached(course):
        return Step(title, LATER, f"If cramps persist at {mg(course.renal.cap)}: a short trial of"
                    " methocarbamol.")
    if facts.older_adult:
        return Step(title, SKIP, f"Methocarbamol is not suggested at age {facts.age} (Beers 2023:"
                    " avoid skeletal muscle relaxants in older adults).")
    return Step(title, NOW, f"Cramps persist at {mg(course.d0)}: consider a short trial of"
                " methocarbamol (its effect is nonspecific).",
                [actions.suggestion("Propose a short methocarbamol trial", _methocarbamol(facts),
                                    recommended=False)], headline="methocarbamol trial")


def _methocarbamol(facts: Facts) -> dict:
    section = facts.knowledge["cramps_next_steps"]
    name = section["methocarbamol_display"]
    medication = {"coding": [{"system": facts.knowledge.systems["rxnorm"],
                              "code": section["methocarbamol_rxnorm"], "display": name}],
                  "text": name}
    return actions.propose_medication(facts, medication, None,
                                      f"Propose a short trial of {name} (dose to be chosen by the"
                                      " prescriber).")


def _referral(facts: Facts, course: Course) -> Step:
    title = "Still refractory: specialist referral"
    if not (_maximum_reached(course) or course.renal.kind == "avoid"):
        return Step(title, LATER, "If cramps stay refractory despite the steps above.")
    text = ("Baclofen must be avoided: refer to a specialist for the cramps."
            if course.renal.kind == "avoid" else
            "Refer to a specialist if cramps persist despite the steps above.")
    return Step(title, NOW, text,
                [actions.suggestion("Refer to a specialist", _referral_request(facts),
                                    recommended=False)], headline="referral")


def _referral_request(facts: Facts) -> dict:
    section = facts.knowledge["cramps_next_steps"]
    display = section["referral_display"]
    resource = {
        "resourceType": "ServiceRequest", "status": "draft", "intent": "proposal",
        "code": {"coding": [{"system": facts.knowledge.systems["snomed"],
                             "code": section["referral_snomed"], "display": display}],
                 "text": display},
        "subject": {"reference": f"Patient/{facts.data.patient_id}"},
        "authoredOn": facts.now.date().isoformat(),
        "reasonCode": [{"text": section["referral_reason"]}],
    }
    return {"type": "create", "description": f"{display}: {section['referral_reason'].lower()}.",
            "resource": resource}


def _maximum_reached(course: Course) -> bool:
    return course.renal.kind != "avoid" and course.at_max


# --- text ---------------------------------------------------------------------------------

def _summary(course: Course, steps: list[Step]) -> str:
    dose = f"baclofen {mg(course.d0)}" if course.d0 is not None else "baclofen"
    if course.at_max and course.d0 == course.renal.cap:
        dose += f" ({_limit_name(course.renal)})"
    headlines = [s.headline for s in steps if s.headline and s.status in (NOW, NEXT, UNKNOWN)]
    return f"Cramps on {dose}: {'; '.join(headlines) or 'next steps'}"


def _cramps(key: str, facts: Facts) -> float:
    return facts.knowledge.value("dosing", key)


def _day(when: datetime) -> str:
    return when.date().isoformat()
