"""Rules 16-18: what baclofen is for (rheumatic, cerebral, cramps in cirrhosis)."""
from __future__ import annotations

from .. import actions
from ..cardbuilder import Finding
from ..facts import Draft, Facts
from ..indication import CEREBRAL, CRAMPS
from .base import each, mg, rule


def _reason_rule(facts: Facts, topic: str, indicator: str, applies, summary: str, detail: str):
    def check(draft: Draft) -> Finding | None:
        if not applies(draft):
            return None
        return Finding(topic, indicator, summary, f"**{draft.order.name}**: {detail}", draft=draft.key)
    return each(facts.baclofen_drafts, check)


@rule(16, "not-indicated-rheumatic", "warning",
      "draft baclofen whose reason is a rheumatic disorder (rheumatoid arthritis, fibromyalgia,"
      " ICD-10 M05-M14, M30-M36, M45-M46, M79.0, M79.7; not M47-M49)")
def not_indicated_rheumatic(facts: Facts):
    return _reason_rule(facts, "not-indicated-rheumatic", "warning", lambda d: "rheumatic" in d.reason,
                        "Baclofen ordered for a rheumatic disorder: not indicated (label)",
                        "the label states baclofen is not indicated for skeletal muscle spasm"
                        " from rheumatic disorders.")


@rule(17, "limited-efficacy-cerebral", "info",
      "draft baclofen whose indication is cerebral: a cerebral-origin reason (stroke, cerebral"
      " palsy, brain injury), or plain spasticity with an active cerebral-origin Condition and none"
      " of spinal origin (multiple sclerosis, spinal cord injury)")
def limited_efficacy_cerebral(facts: Facts):
    return _reason_rule(facts, "limited-efficacy-cerebral", "info", lambda d: d.indication == CEREBRAL,
                        "Baclofen for spasticity of cerebral origin: limited efficacy (label)",
                        "the label reports limited benefit in spasticity from stroke, cerebral"
                        " palsy or brain injury, with more sedation; review the expected benefit.")


@rule(18, "cirrhosis-next-steps", "info",
      "active cirrhosis, indication cramps, established therapy (course start >="
      " {dosing.established_min_days} days ago), draft daily dose = {dosing.ceiling_cramps_mg}"
      " mg/day (the ceiling)",
      "albumin {albumin.low_g}-{albumin.high_g} g/week; orphenadrine as an alternative (not"
      " offered from age {age.older_adult_years}); creatinine, sodium and potassium within"
      " {orders.cirrhosis_monitoring_days} days; stretching, massage and ice in the detail")
def cirrhosis_next_steps(facts: Facts):
    ceiling = facts.knowledge.value("dosing", "ceiling_cramps_mg")
    if not facts.cirrhosis:
        return None
    drafts = [d for d in facts.baclofen_drafts if d.indication == CRAMPS and d.d1 == ceiling
              and facts.established_therapy(d)]
    if not drafts:
        return None
    days = facts.knowledge.value("orders", "cirrhosis_monitoring_days")
    orphenadrine = ("" if facts.older_adult else
                    " Orphenadrine is an alternative agent (avoided from age 65: anticholinergic).")
    return Finding(
        "cirrhosis-next-steps", "info",
        f"Cramps in cirrhosis at baclofen {mg(ceiling)} (the maximum): next steps",
        f"Baclofen is at the {mg(ceiling)} ceiling for cramps. If cramps persist: human albumin"
        f" {_albumin_range(facts)} g/week;{orphenadrine} Monitor creatinine, sodium and potassium"
        f" during the first month. Add stretching, massage and ice.",
        [s for s in _next_step_suggestions(facts, days) if s], selection="any", draft=drafts[0].key)


def _albumin_range(facts: Facts) -> str:
    albumin = facts.knowledge["albumin"]
    return f"{albumin['low_g']:g}-{albumin['high_g']:g}"


def _next_step_suggestions(facts: Facts, days: int) -> list[dict | None]:
    labs = [actions.order_lab(facts, lab, days) for lab in ("creatinine", "sodium", "potassium")]
    steps = [actions.suggestion(f"Monitor creatinine, sodium, potassium within {days:g} days", *labs),
             actions.suggestion(f"Propose albumin {_albumin_range(facts)} g/week", _albumin(facts),
                                recommended=False)]
    if not facts.older_adult:
        steps.append(actions.suggestion("Propose orphenadrine instead", _orphenadrine(facts),
                                        recommended=False))
    return steps


def _albumin(facts: Facts) -> dict:
    albumin = facts.knowledge["albumin"]
    text = f"{albumin['display']} {_albumin_range(facts)} g per week"
    dosage = {"text": text,
              "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}},
              "doseAndRate": [{"doseRange": {"low": actions.mg(facts, albumin["low_g"], "g"),
                                             "high": actions.mg(facts, albumin["high_g"], "g")}}]}
    return actions.propose_medication(facts, {"text": albumin["display"]}, dosage, f"Propose {text}.")


def _orphenadrine(facts: Facts) -> dict:
    code = facts.knowledge["drugs"]["orphenadrine"]["rxnorm"][0]
    medication = {"coding": [{"system": facts.knowledge.systems["rxnorm"], "code": code,
                              "display": "orphenadrine"}], "text": "orphenadrine"}
    return actions.propose_medication(facts, medication, None,
                                      "Propose orphenadrine (dose to be chosen by the prescriber).")
