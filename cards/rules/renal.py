"""Rules 1-3: renal function before oral baclofen (Wolf 2018; Beers 2023 for older adults)."""
from __future__ import annotations

from .. import actions
from ..cardbuilder import DoseLimit, Finding
from ..facts import Draft, Facts
from .base import each, mg, rule
from .dosing import start_dose

GUIDELINE_NOTE = ("Baclofen is cleared by the kidneys and accumulates when renal function falls"
                  " (encephalopathy, coma). The eGFR bands are guideline-based (Wolf 2018): the"
                  " FDA labels give no numeric thresholds.")


def renal_facts_text(facts: Facts) -> str:
    renal = facts.renal
    parts = []
    if "dialysis" in facts.active_conditions:
        parts.append("Dialysis or end-stage renal disease is on the problem list.")
    if facts.dialysis_procedure:
        parts.append(f"Dialysis was performed on {facts.dialysis_procedure.date().isoformat()}.")
    if renal:
        parts.append(f"Latest renal value: **{renal.label()}**, {renal.basis}.")
        if facts.renal_stale:
            parts.append(f"It is older than {facts.knowledge.value('renal', 'lookback_days'):g} days:"
                         " a new serum creatinine is suggested.")
    if facts.renal_unreadable:
        parts.append(f"Note: {facts.renal_unreadable.label()}.")
    return " ".join(parts)


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def _recheck(facts: Facts) -> list[dict]:
    """Rules 1/2 on a stale value also offer the creatinine order (rule 3 stays silent)."""
    if not facts.renal_stale or facts.dialysis:
        return []
    return [s for s in [actions.suggestion("Order serum creatinine", actions.order_lab(facts, "creatinine"))] if s]


TAPER_NOTE = ("Baclofen has been taken for {days} days: never stop it abruptly (hallucinations,"
              " seizures, fever, rebound spasticity); taper it. If there are signs of toxicity"
              " (confusion, drowsiness, encephalopathy), seek urgent review instead.")


@rule(1, "renal-avoid", "critical",
      "draft oral baclofen and (eGFR < {renal.avoid_below_egfr} mL/min/1.73m2, or dialysis /"
      " end-stage renal disease: an active Condition, or a dialysis Procedure of the last"
      " {dialysis_procedures.lookback_days} days)",
      "no established therapy: delete the draft. Established therapy (course started >="
      " {dosing.established_min_days} days ago): the taper plan (recommended), delete as a second"
      " choice. Also order serum creatinine when the renal value is older than"
      " {renal.lookback_days} days")
def renal_avoid(facts: Facts):
    limit = facts.knowledge.value("renal", "avoid_below_egfr")
    renal = facts.renal
    if not facts.dialysis and not (renal and renal.egfr < limit):
        return None
    trigger = ("Dialysis / end-stage renal disease on record" if facts.dialysis
               else renal.label())

    def finding(draft: Draft) -> Finding:
        established = facts.established_therapy(draft)
        taper = TAPER_NOTE.format(days=int(facts.days_on_course(draft) or 0)) if established else ""
        delete = actions.suggestion(f"Remove the {draft.order.name} order", actions.delete_draft(draft),
                                    recommended=not established)
        return Finding(
            "renal-avoid", "critical", f"{trigger}: avoid baclofen",
            f"**{draft.order.name}**: avoid oral baclofen at eGFR < {limit:g} mL/min/1.73m2 or on"
            f" dialysis. {_join(taper, renal_facts_text(facts), GUIDELINE_NOTE)}",
            [s for s in [delete, *_recheck(facts)] if s], selection="any", draft=draft.key)
    return each(facts.baclofen_drafts, finding)


@rule(2, "renal-reduce", "warning",
      "draft oral baclofen, {renal.avoid_below_egfr} <= eGFR < {renal.reduce_below_egfr}"
      " mL/min/1.73m2, no dialysis, unless the order is already adjusted (D1 <= D0 x"
      " {renal.reduction_fraction}, or a naive start <= the start dose x {renal.reduction_fraction},"
      " or D1 <= {renal.reduced_dose_min_mg} mg/day); from age {age.older_adult_years} the detail"
      " adds that Beers 2023 advises avoiding baclofen at eGFR < 60",
      "target {renal.reduction_fraction} x D1 (rounded down to {renal.reduced_dose_step_mg} mg/day"
      " steps, at least {renal.reduced_dose_min_mg} mg/day; a cut of established therapy below"
      " D0 / 2 becomes the taper plan); arbitration writes the one dose suggestion")
def renal_reduce(facts: Facts):
    knowledge = facts.knowledge
    low, high = knowledge.value("renal", "avoid_below_egfr"), knowledge.value("renal", "reduce_below_egfr")
    renal = facts.renal
    if facts.dialysis or not renal or not low <= renal.egfr < high:
        return None
    beers = (f"**Age {facts.age}:** the AGS Beers Criteria 2023 advise avoiding baclofen at"
             " eGFR < 60; if it cannot be avoided use the lowest dose and watch for CNS toxicity."
             if facts.older_adult else "")

    def finding(draft: Draft) -> Finding | None:
        if already_adjusted(facts, draft):
            return None
        target = draft.d1 * knowledge.value("renal", "reduction_fraction") if draft.d1 else None
        dose = f" ({mg(draft.d1)})" if draft.d1 else ""
        return Finding(
            "renal-reduce", "warning", f"{renal.label()}: reduce baclofen{dose} by half",
            f"**{draft.order.name}**{dose}: at eGFR {low:g}-{high:g} mL/min/1.73m2 give about"
            f" {knowledge.value('renal', 'reduction_fraction'):g} of the usual dose."
            f" {_join(renal_facts_text(facts), beers, GUIDELINE_NOTE)}",
            _recheck(facts), selection="any", draft=draft.key,
            dose_limit=DoseLimit(target, "the renal limit") if target else None)
    return each(facts.baclofen_drafts, finding)


def already_adjusted(facts: Facts, draft: Draft) -> bool:
    """D1 <= half of D0, or of the start dose for a naive patient, or the minimum dose."""
    if draft.d1 is None:
        return False
    fraction = facts.knowledge.value("renal", "reduction_fraction")
    d0, _ = facts.current_dose(draft)
    if d0 is not None and draft.d1 <= d0 * fraction:
        return True
    if facts.naive_for(draft):
        if draft.d1 <= start_dose(facts, draft)[0] * fraction:
            return True
    return draft.d1 <= facts.knowledge.value("renal", "reduced_dose_min_mg")


@rule(3, "renal-unknown", "warning",
      "draft oral baclofen, no dialysis/ESRD, and no renal value at all, or the latest is older"
      " than {renal.lookback_days} days and >= {renal.reduce_below_egfr} (a failed query is"
      " rule 20, not this one)",
      "create a ServiceRequest for serum creatinine (LOINC {orders.creatinine})")
def renal_unknown(facts: Facts):
    if not renal_unknown_fires(facts):
        return None
    renal = facts.renal
    lookback = facts.knowledge.value("renal", "lookback_days")
    if renal is None and facts.renal_unreadable:
        label = facts.renal_unreadable.label()
        summary = f"{label[0].upper()}{label[1:]}: check renal function before baclofen"
    elif renal is None:
        summary = "No eGFR or creatinine on record: check renal function before baclofen"
    else:
        summary = f"Last {renal.label()} is over {lookback:g} days old: recheck before baclofen"
    return Finding(
        "renal-unknown", "warning", summary,
        f"Baclofen needs a dose reduction at eGFR < 60 and should be avoided below 30, so a"
        f" renal value from the last {lookback:g} days is needed before prescribing."
        f" {_join(renal_facts_text(facts), GUIDELINE_NOTE)}",
        [actions.suggestion("Order serum creatinine", actions.order_lab(facts, "creatinine"))])


def renal_unknown_fires(facts: Facts) -> bool:
    """No renal value at all, or a stale one >= the reduce threshold (rules 1/2 cover the
    stale low ones); a failed query is rule 20's."""
    if not facts.baclofen_drafts or facts.dialysis or facts.renal_query_failed:
        return False
    renal = facts.renal
    return renal is None or (facts.renal_stale and
                             renal.egfr >= facts.knowledge.value("renal", "reduce_below_egfr"))
