"""Rules 7-9 and 22: ceiling, starting dose and titration of oral baclofen (label for
spasticity; EASL 2018 / AASLD for cramps), and the adult-only scope of these checks.

The dose rules say which daily dose they allow (`dose_limit`); the arbitration step turns
the lowest limit on a draft into the one dose suggestion every card offers.
"""
from __future__ import annotations

from datetime import timedelta

from ..cardbuilder import DoseLimit, Finding
from ..dates import days_between
from ..facts import Draft, Facts
from ..indication import CRAMPS
from .base import each, mg, rule

CIRRHOSIS_SOURCE = "cirrhosis"


def by_indication(facts: Facts, draft: Draft, name: str) -> float:
    """dosing.<name>_cramps_mg for cramps, dosing.<name>_other_mg otherwise."""
    suffix = "cramps" if draft.indication == CRAMPS else "other"
    return facts.knowledge.value("dosing", name.format(suffix))


def for_what(draft: Draft) -> str:
    return "for cramps" if draft.indication == CRAMPS else "for spasticity/other uses"


def source_of(facts: Facts, draft: Draft, topic: str) -> str | None:
    """The cramps protocol numbers come from EASL 2018 / AASLD, the others from the label."""
    return facts.knowledge.topic(topic).get("cramps_source") if draft.indication == CRAMPS else None


def adult_drafts(facts: Facts) -> list[Draft]:
    """The dose rules 7-10 are adult doses: silent under 18 (rule 22 says so)."""
    return facts.baclofen_drafts if facts.adult is not False else []


@rule(7, "dose-above-max", "warning; critical above {dosing.critical_above_mg} mg/day",
      "age >= {age.adult_years}; the combined daily dose (D1 + the other baclofen drafts of the"
      " request + active therapy no draft replaces) above the ceiling:"
      " {dosing.ceiling_cramps_mg} mg/day for cramps, {dosing.ceiling_other_mg} mg/day otherwise",
      "the draft's target is the ceiling minus the active orders it does not replace (none at 0"
      " or below: rule 12 offers the delete); arbitration writes the one dose suggestion")
def dose_above_max(facts: Facts):
    def check(draft: Draft) -> Finding | None:
        if draft.d1 is None:
            return None
        ceiling = by_indication(facts, draft, "ceiling_{}_mg")
        others = [d.order.daily_mg for d in facts.drafts + facts.other_drafts
                  if d.oral_baclofen_start and d.key != draft.key]
        untouched = facts.unreplaced_active()
        # Unknown doses of the other orders are left out: the sum is then a lower bound.
        combined = draft.d1 + sum(d for d in others if d) + sum(o.daily_mg or 0 for o in untouched)
        if combined <= ceiling:
            return None
        critical = combined > facts.knowledge.value("dosing", "critical_above_mg")
        kept = sum(o.daily_mg or 0 for o in untouched)
        room = ceiling - kept
        what = (f"Baclofen {mg(draft.d1)}" if combined == draft.d1
                else f"Baclofen {mg(draft.d1)} + other orders = {mg(combined)}")
        detail = (f"**{draft.order.name}** gives {mg(draft.d1)}; with the other baclofen orders"
                  f" of the patient and this request the daily total is {mg(combined)}. The maximum"
                  f" {for_what(draft)} is {mg(ceiling)}. Higher doses add sedation, confusion and"
                  " weakness.")
        if kept and room <= 0:
            detail += (f" Active orders this draft does not replace already give {mg(kept)}:"
                       " no dose of this draft fits under the maximum.")
        return Finding(
            "dose-above-max", "critical" if critical else "warning",
            f"{what}: above the {mg(ceiling)} maximum {for_what(draft)}", detail,
            draft=draft.key, source=source_of(facts, draft, "dose-above-max"),
            dose_limit=DoseLimit(room, "the ceiling") if room > 0 else None)
    return each(adult_drafts(facts), check)


def start_dose(facts: Facts, draft: Draft) -> tuple[float, str]:
    """Rule 8's start dose; from 65 the lower of it and the older-adult start (the seed)."""
    start = by_indication(facts, draft, "start_{}_mg")
    elderly = facts.knowledge.value("dosing", "elderly_start_mg")
    if facts.older_adult and elderly < start:
        return elderly, "the older-adult starting dose"
    return start, "the starting dose"


@rule(8, "start-dose-high", "warning",
      "age >= {age.adult_years}, baclofen-naive (no active oral baclofen, none authored in the last"
      " {dosing.naive_lookback_days} days, no lapsed course) and draft daily dose above the start"
      " dose: {dosing.start_cramps_mg} mg/day for cramps, {dosing.start_other_mg} mg/day otherwise"
      " (from age {age.older_adult_years} at most {dosing.elderly_start_mg} mg/day)",
      "target: the start dose (arbitration writes the one dose suggestion)")
def start_dose_high(facts: Facts):
    def check(draft: Draft) -> Finding | None:
        start, name = start_dose(facts, draft)
        if not facts.naive_for(draft) or draft.d1 is None or draft.d1 <= start:
            return None
        return Finding(
            "start-dose-high", "warning",
            f"Baclofen {mg(draft.d1)} to start is above the {mg(start)} starting dose {for_what(draft)}",
            f"No baclofen in the last {facts.knowledge.value('dosing', 'naive_lookback_days'):g}"
            f" days. **{draft.order.name}** starts at {mg(draft.d1)}; start at {mg(start)}"
            f" {for_what(draft)} and increase gradually to limit drowsiness, dizziness and weakness.",
            draft=draft.key, source=source_of(facts, draft, "start-dose-high"),
            dose_limit=DoseLimit(start, name))
    return each(adult_drafts(facts), check)


@rule(9, "titration-step", "warning",
      "age >= {age.adult_years}, active therapy or a lapsed course with known dose D0, and draft"
      " dose D1 > D0 + step ({dosing.step_cramps_mg} mg/day for cramps, {dosing.step_other_mg}"
      " otherwise), or D1 > D0 less than {dosing.step_interval_cramps_days} days (cramps) /"
      " {dosing.step_interval_other_days} days (otherwise) after the last dose change",
      "target: D0 + step; when the interval is too short, D0, with the date from which an"
      " increase is allowed")
def titration_step(facts: Facts):
    def check(draft: Draft) -> Finding | None:
        d0, _ = facts.current_dose(draft)
        if d0 is None or draft.d1 is None or draft.d1 <= d0:
            return None
        step = by_indication(facts, draft, "step_{}_mg")
        interval = facts.knowledge.value("dosing", "step_interval_{}_days".format(
            "cramps" if draft.indication == CRAMPS else "other"))
        last = facts.last_dose_change(draft)
        days = days_between(last, facts.now) if last else None
        too_big, too_soon = draft.d1 > d0 + step, days is not None and days < interval
        if not (too_big or too_soon):
            return None
        why = f"a step of {mg(draft.d1 - d0)} (at most {mg(step)})" if too_big else ""
        limit = DoseLimit(d0 + step, "the titration step")
        detail = f" Increase by at most {mg(step)} every {interval:g} days {for_what(draft)}."
        if too_soon:
            allowed = (last + timedelta(days=interval)).date().isoformat()
            why += f"{' and ' if why else ''}only {int(days)} days after the last change (at least {interval:g})"
            limit = DoseLimit(d0, "the current dose (too soon to increase)")
            detail += f" An increase is allowed from {allowed}."
        return Finding(
            "titration-step", "warning", f"Baclofen {d0:g} -> {mg(draft.d1)}: {why}"[:139],
            f"Current dose {mg(d0)}; **{draft.order.name}** raises it to {mg(draft.d1)}: {why}."
            + detail, draft=draft.key, source=source_of(facts, draft, "titration-step"),
            dose_limit=limit)
    return each(adult_drafts(facts), check)


@rule(22, "pediatric-dosing", "info", "draft oral baclofen, age < {age.adult_years}")
def pediatric_dosing(facts: Facts):
    def check(draft: Draft) -> Finding:
        return Finding(
            "pediatric-dosing", "info",
            f"Age {facts.age}: adult baclofen dose checks were not applied",
            f"**{draft.order.name}**: the patient is {facts.age} years old. The dose checks"
            " (maximum, starting dose, titration step, older-adult start) use adult doses and"
            " were not applied; check the dose against a pediatric reference. Renal checks use"
            " only a reported eGFR (no CKD-EPI under 18).", draft=draft.key)
    return each(facts.baclofen_drafts if facts.adult is False else [], check)
