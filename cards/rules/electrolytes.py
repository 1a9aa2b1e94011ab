"""Rules 4-6: correct hypokalemia and hypomagnesemia before baclofen for cramps."""
from __future__ import annotations

from .. import actions
from ..cardbuilder import Finding
from ..dates import days_between
from ..facts import Facts
from ..hookdata import MAGNESIUM, POTASSIUM
from ..indication import CRAMPS, UNKNOWN
from .base import rule
from .renal import renal_unknown_fires

CRAMP_NOTE = ("Hypokalemia and hypomagnesemia cause cramps: correct them first; baclofen is for"
              " cramps that persist once electrolytes are normal.")


def cramp_drafts(facts: Facts) -> list:
    return [d for d in facts.baclofen_drafts if d.indication in (CRAMPS, UNKNOWN)]


def low_value(facts: Facts, lab: str):
    """(latest value, threshold) when a cramp draft meets a recent value under the threshold."""
    limit = facts.knowledge.value("electrolytes", f"{lab}_below_mmol_l")
    value = facts.recent_lab(lab)
    if cramp_drafts(facts) and value and value.value < limit:
        return value, limit
    return None


@rule(4, "hypokalemia", "warning",
      "draft oral baclofen for cramps or an unknown indication, and the latest potassium of the"
      " last {electrolytes.lookback_days} days < {electrolytes.potassium_below_mmol_l} mmol/L",
      "none; the detail says to correct it first")
def hypokalemia(facts: Facts):
    low = low_value(facts, "potassium")
    if not low:
        return None
    value, limit = low
    return Finding("hypokalemia", "warning",
                   f"Potassium {value.label()}: correct hypokalemia before baclofen for cramps",
                   f"Potassium is below {limit:g} mmol/L. {CRAMP_NOTE}")


@rule(5, "hypomagnesemia", "warning",
      "as rule 4, with the latest magnesium < {electrolytes.magnesium_below_mmol_l} mmol/L",
      "create a MedicationRequest (intent proposal) for magnesium oxide"
      " {magnesium_oxide.dose_mg} mg ({magnesium_oxide.dose_mmol} mmol) at night; not offered"
      " when eGFR < {renal.avoid_below_egfr}, on dialysis, or with no usable renal value of the"
      " last {renal.lookback_days} days (then serum creatinine is offered, unless rule 3's card"
      " carries it); caution at eGFR {renal.avoid_below_egfr}-{renal.reduce_below_egfr}")
def hypomagnesemia(facts: Facts):
    low = low_value(facts, "magnesium")
    if not low:
        return None
    value, limit = low
    knowledge = facts.knowledge
    renal_limit = knowledge.value("renal", "avoid_below_egfr")
    detail = f"Magnesium is below {limit:g} mmol/L. {CRAMP_NOTE} {DEPLETION_NOTE}"
    if facts.dialysis or (facts.renal_usable and facts.renal.egfr < renal_limit):
        detail += (f" Magnesium oxide is **not** suggested: eGFR < {renal_limit:g} or dialysis"
                   " (magnesium accumulates); replace magnesium under specialist advice.")
        return Finding("hypomagnesemia", "warning", _summary(value), detail)
    if not facts.renal_usable:
        unreadable = f" ({facts.renal_unreadable.label()})" if facts.renal_unreadable else ""
        detail += (f" Magnesium oxide is **not** suggested until renal function is known: no"
                   f" usable eGFR or creatinine of the last {knowledge.value('renal', 'lookback_days'):g}"
                   f" days{unreadable}, and magnesium accumulates in renal failure.")
        order = ([] if renal_unknown_fires(facts) else
                 [actions.suggestion("Order serum creatinine", actions.order_lab(facts, "creatinine"))])
        return Finding("hypomagnesemia", "warning", _summary(value), detail, order)
    detail += (f" Magnesium oxide {_mgo_range(knowledge)} a day, at night.")
    if facts.renal.egfr < knowledge.value("renal", "reduce_below_egfr"):
        detail += f" Use it with caution: {facts.renal.label()} (renal insufficiency)."
    return Finding("hypomagnesemia", "warning", _summary(value), detail,
                   [actions.suggestion("Propose magnesium oxide at night", magnesium_oxide(facts))])


DEPLETION_NOTE = ("Correct water and sodium depletion first: secondary hyperaldosteronism"
                  " worsens magnesium loss.")


def _mgo_range(knowledge) -> str:
    mgo = knowledge["magnesium_oxide"]
    return (f"{mgo['dose_mmol']:g}-{mgo['high_mmol']:g} mmol ({mgo['dose_mg']:g}-{mgo['high_mg']:g} mg)")


def _summary(value) -> str:
    return f"Magnesium {value.label()}: correct hypomagnesemia before baclofen for cramps"


def magnesium_oxide(facts: Facts) -> dict:
    mgo = facts.knowledge["magnesium_oxide"]
    text = f"{mgo['display']} {mgo['dose_mg']:g} mg ({mgo['dose_mmol']:g} mmol) at night"
    medication = {"coding": [{"system": facts.knowledge.systems["rxnorm"], "code": mgo["rxnorm"],
                              "display": mgo["display"]}], "text": text}
    dosage = {
        "text": text,
        "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                              "when": [mgo["timing_code"]]}},
        "doseAndRate": [{"doseQuantity": actions.mg(facts, mgo["dose_mg"])}],
    }
    return actions.propose_medication(facts, medication, dosage, f"Propose {text}.")


@rule(6, "electrolytes-unknown", "info",
      "as rule 4, and potassium or magnesium has no value in the last"
      " {electrolytes.lookback_days} days",
      "create a ServiceRequest for each missing lab (potassium {orders.potassium},"
      " magnesium {orders.magnesium})")
def electrolytes_unknown(facts: Facts):
    if not cramp_drafts(facts):
        return None
    missing = [lab for lab, key in (("potassium", POTASSIUM), ("magnesium", MAGNESIUM))
               if key not in facts.unavailable and facts.recent_lab(lab) is None]
    if not missing:
        return None
    days = facts.knowledge.value("electrolytes", "lookback_days")
    names = " or ".join(missing)
    unreadable = [facts.unreadable_labs[lab].label() for lab in missing if lab in facts.unreadable_labs
                  and days_between(facts.unreadable_labs[lab].when, facts.now) <= days]
    note = f" Note: {'; '.join(unreadable)}." if unreadable else ""
    return Finding(
        "electrolytes-unknown", "info",
        f"No {names} result in the last {days:g} days: check before baclofen for cramps",
        f"No usable {names} result in the last {days:g} days.{note} {CRAMP_NOTE}",
        [actions.suggestion(f"Order {' and '.join(missing)}",
                            *(actions.order_lab(facts, lab) for lab in missing))],
        selection="any")
