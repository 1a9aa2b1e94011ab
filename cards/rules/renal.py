"""Rules 1-3: renal function before oral baclofen (Wolf 2018; Beers 2023 for older adults)."""
from __future__ import annotations

import math

from .. import actions
from ..cardbuilder import Finding
from ..facts import Draft, Facts
from .base import each, mg, rule

GUIDELINE_NOTE = ("Baclofen is cleared by the kidneys and accumulates when renal function falls"
                  " (encephalopathy, coma). The eGFR bands are guideline-based (Wolf 2018): the"
                  " FDA labels give no numeric thresholds.")


def renal_facts_text(facts: Facts) -> str:
    renal = facts.renal
    parts = []
    if facts.dialysis:
        parts.append("Dialysis or end-stage renal disease is on the problem list.")
    if renal:
        parts.append(f"Latest renal value: **{renal.label()}**, {renal.basis}.")
        if facts.renal_stale:
            parts.append(f"It is older than {facts.knowledge.value('renal', 'lookback_days'):g} days:"
                         " a new serum creatinine is suggested.")
    return " ".join(parts)


def _join(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def _recheck(facts: Facts) -> list[dict]:
    """Rules 1/2 on a stale value also offer the creatinine order (rule 3 stays silent)."""
    if not facts.renal_stale or facts.dialysis:
        return []
    return [actions.suggestion("Order serum creatinine", actions.order_lab(facts, "creatinine"))]


@rule(1, "renal-avoid", "critical",
      "draft oral baclofen and (eGFR < {renal.avoid_below_egfr} mL/min/1.73m2, or an active"
      " dialysis / end-stage renal disease Condition)",
      "delete the draft; also order serum creatinine when the renal value is older than"
      " {renal.lookback_days} days")
def renal_avoid(facts: Facts):
    limit = facts.knowledge.value("renal", "avoid_below_egfr")
    renal = facts.renal
    if not facts.dialysis and not (renal and renal.egfr < limit):
        return None
    trigger = ("Dialysis / end-stage renal disease on record" if facts.dialysis
               else renal.label())

    def finding(draft: Draft) -> Finding:
        return Finding(
            "renal-avoid", "critical", f"{trigger}: avoid baclofen",
            f"**{draft.order.name}**: avoid oral baclofen at eGFR < {limit:g} mL/min/1.73m2 or on"
            f" dialysis. {_join(renal_facts_text(facts), GUIDELINE_NOTE)}",
            [s for s in [actions.suggestion(f"Remove the {draft.order.name} order",
                                            actions.delete_draft(draft)), *_recheck(facts)] if s],
            selection="any")
    return each(facts.baclofen_drafts, finding)


@rule(2, "renal-reduce", "warning",
      "draft oral baclofen, {renal.avoid_below_egfr} <= eGFR < {renal.reduce_below_egfr}"
      " mL/min/1.73m2, no dialysis; from age {age.older_adult_years} the detail adds that"
      " Beers 2023 advises avoiding baclofen at eGFR < 60",
      "update the draft to {renal.reduction_fraction} x its daily dose (rounded down to"
      " {renal.reduced_dose_step_mg} mg/day steps, at least {renal.reduced_dose_min_mg} mg/day)")
def renal_reduce(facts: Facts):
    knowledge = facts.knowledge
    low, high = knowledge.value("renal", "avoid_below_egfr"), knowledge.value("renal", "reduce_below_egfr")
    renal = facts.renal
    if facts.dialysis or not renal or not low <= renal.egfr < high:
        return None
    beers = (f"**Age {facts.age}:** the AGS Beers Criteria 2023 advise avoiding baclofen at"
             " eGFR < 60; if it cannot be avoided use the lowest dose and watch for CNS toxicity."
             if facts.older_adult else "")

    def finding(draft: Draft) -> Finding:
        target = reduced_dose(draft.d1, knowledge)
        update = actions.update_dose(facts, draft, target) if target else None
        dose = f" ({mg(draft.d1)})" if draft.d1 else ""
        suggestions = [actions.suggestion(f"Reduce to {mg(target)}", update) if update else None,
                       *_recheck(facts)]
        return Finding(
            "renal-reduce", "warning", f"{renal.label()}: reduce baclofen{dose} by half",
            f"**{draft.order.name}**{dose}: at eGFR {low:g}-{high:g} mL/min/1.73m2 give about"
            f" {knowledge.value('renal', 'reduction_fraction'):g} of the usual dose."
            f" {_join(renal_facts_text(facts), beers, GUIDELINE_NOTE)}",
            [s for s in suggestions if s], selection="any")
    return each(facts.baclofen_drafts, finding)


def reduced_dose(daily: float | None, knowledge) -> float | None:
    """Half the dose rounded down to 5 mg/day steps, at least 5; None when no lower."""
    if not daily:
        return None
    renal = knowledge["renal"]
    step = renal["reduced_dose_step_mg"]
    target = max(renal["reduced_dose_min_mg"],
                 math.floor(daily * renal["reduction_fraction"] / step + 1e-9) * step)
    return target if target < daily else None


@rule(3, "renal-unknown", "warning",
      "draft oral baclofen, no dialysis/ESRD, and no renal value at all, or the latest is older"
      " than {renal.lookback_days} days and >= {renal.reduce_below_egfr} (a failed query is"
      " rule 20, not this one)",
      "create a ServiceRequest for serum creatinine (LOINC {orders.creatinine})")
def renal_unknown(facts: Facts):
    if not facts.baclofen_drafts or facts.dialysis or facts.renal_query_failed:
        return None
    renal = facts.renal
    lookback = facts.knowledge.value("renal", "lookback_days")
    if renal is None:
        summary = "No eGFR or creatinine on record: check renal function before baclofen"
    elif facts.renal_stale and renal.egfr >= facts.knowledge.value("renal", "reduce_below_egfr"):
        summary = f"Last {renal.label()} is over {lookback:g} days old: recheck before baclofen"
    else:
        return None
    return Finding(
        "renal-unknown", "warning", summary,
        f"Baclofen needs a dose reduction at eGFR < 60 and should be avoided below 30, so a"
        f" renal value from the last {lookback:g} days is needed before prescribing."
        f" {_join(renal_facts_text(facts), GUIDELINE_NOTE)}",
        [actions.suggestion("Order serum creatinine", actions.order_lab(facts, "creatinine"))])
