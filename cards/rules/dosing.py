"""Rules 7-9: ceiling, starting dose and titration of oral baclofen (label; AASLD for cramps)."""
from __future__ import annotations

from .. import actions
from ..cardbuilder import Finding
from ..dates import days_between
from ..facts import Draft, Facts
from ..indication import CRAMPS
from ..therapy import latest_authored
from .base import each, mg, rule


def by_indication(facts: Facts, draft: Draft, name: str) -> float:
    """dosing.<name>_cramps_mg for cramps, dosing.<name>_other_mg otherwise."""
    suffix = "cramps" if draft.indication == CRAMPS else "other"
    return facts.knowledge.value("dosing", name.format(suffix))


def for_what(draft: Draft) -> str:
    return "for cramps" if draft.indication == CRAMPS else "for spasticity/other uses"


def redose(facts: Facts, draft: Draft, target: float, label: str) -> list[dict]:
    suggestion = actions.suggestion(label, actions.update_dose(facts, draft, target))
    return [suggestion] if suggestion else []


@rule(7, "dose-above-max", "warning; critical above {dosing.critical_above_mg} mg/day",
      "draft daily dose above the ceiling: {dosing.ceiling_cramps_mg} mg/day for cramps,"
      " {dosing.ceiling_other_mg} mg/day otherwise",
      "update the draft to the ceiling dose")
def dose_above_max(facts: Facts):
    def check(draft: Draft) -> Finding | None:
        ceiling = by_indication(facts, draft, "ceiling_{}_mg")
        if draft.d1 is None or draft.d1 <= ceiling:
            return None
        critical = draft.d1 > facts.knowledge.value("dosing", "critical_above_mg")
        return Finding(
            "dose-above-max", "critical" if critical else "warning",
            f"Baclofen {mg(draft.d1)} is above the {mg(ceiling)} maximum {for_what(draft)}",
            f"**{draft.order.name}** adds up to {mg(draft.d1)}. The maximum {for_what(draft)} is"
            f" {mg(ceiling)} (label: 80 mg/day for spasticity; AASLD/EASL: 30 mg/day for cramps"
            " in cirrhosis). Higher doses add sedation, confusion and weakness.",
            redose(facts, draft, ceiling, f"Reduce to {mg(ceiling)}"))
    return each(facts.baclofen_drafts, check)


@rule(8, "start-dose-high", "warning",
      "baclofen-naive (no active oral baclofen, none authored in the last"
      " {dosing.naive_lookback_days} days) and draft daily dose above the start dose:"
      " {dosing.start_cramps_mg} mg/day for cramps, {dosing.start_other_mg} mg/day otherwise",
      "update the draft to the start dose")
def start_dose_high(facts: Facts):
    if not facts.naive:
        return None

    def check(draft: Draft) -> Finding | None:
        start = by_indication(facts, draft, "start_{}_mg")
        if draft.d1 is None or draft.d1 <= start:
            return None
        return Finding(
            "start-dose-high", "warning",
            f"Baclofen {mg(draft.d1)} to start is above the {mg(start)} starting dose {for_what(draft)}",
            f"No baclofen in the last {facts.knowledge.value('dosing', 'naive_lookback_days'):g}"
            f" days. **{draft.order.name}** starts at {mg(draft.d1)}; start at {mg(start)}"
            f" {for_what(draft)} and increase gradually to limit drowsiness, dizziness and weakness.",
            redose(facts, draft, start, f"Start at {mg(start)}"))
    return each(facts.baclofen_drafts, check)


@rule(9, "titration-step", "warning",
      "active therapy with known dose D0 and draft dose D1 > D0 + step ({dosing.step_cramps_mg}"
      " mg/day for cramps, {dosing.step_other_mg} otherwise), or D1 > D0 less than"
      " {dosing.step_interval_cramps_days} days (cramps) / {dosing.step_interval_other_days}"
      " days (otherwise) after the latest active order was authored",
      "update the draft to D0 + step (when only too soon: keep D0)")
def titration_step(facts: Facts):
    def check(draft: Draft) -> Finding | None:
        d0, changed = facts.current_dose(draft)
        if d0 is None or draft.d1 is None or draft.d1 <= d0:
            return None
        step = by_indication(facts, draft, "step_{}_mg")
        interval = facts.knowledge.value("dosing", "step_interval_{}_days".format(
            "cramps" if draft.indication == CRAMPS else "other"))
        last = latest_authored(changed)
        days = days_between(last, facts.now) if last else None
        too_big, too_soon = draft.d1 > d0 + step, days is not None and days < interval
        if not (too_big or too_soon):
            return None
        target = d0 + step if too_big else d0
        why = (f"a step of {mg(draft.d1 - d0)} (at most {mg(step)})" if too_big else "")
        if too_soon:
            why += f"{' and ' if why else ''}only {int(days)} days after the last change (at least {interval:g})"
        return Finding(
            "titration-step", "warning",
            f"Baclofen {d0:g} -> {mg(draft.d1)}: {why}"[:139],
            f"Current dose {mg(d0)}; **{draft.order.name}** raises it to {mg(draft.d1)}: {why}."
            f" Increase by at most {mg(step)} every {interval:g} days {for_what(draft)}.",
            redose(facts, draft, target, f"Change to {mg(target)}"))
    return each(facts.baclofen_drafts, check)
