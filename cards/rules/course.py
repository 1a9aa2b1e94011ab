"""Rules 10-12 and 19: the patient's baclofen course (start, stop, duplicates, tolerance)."""
from __future__ import annotations

from .. import actions
from ..cardbuilder import Finding
from ..facts import Draft, Facts
from .base import each, mg, rule
from .dosing import adult_drafts


@rule(10, "elderly-start", "info",
      "age >= {age.older_adult_years}, baclofen-naive and a draft oral baclofen",
      "none; the detail: start low, {dosing.elderly_start_text} (at most {dosing.elderly_start_mg}"
      " mg/day), watch weakness, urinary function, cognition, sedation, falls")
def elderly_start(facts: Facts):
    drafts = [d for d in adult_drafts(facts) if facts.naive_for(d)]
    if not (drafts and facts.older_adult):
        return None
    start = facts.knowledge.value("dosing", "elderly_start_text")
    most = facts.knowledge.value("dosing", "elderly_start_mg")
    return Finding(
        "elderly-start", "info", f"Age {facts.age}: start baclofen low ({start})",
        f"Starting baclofen at age {facts.age}: start low, {start} (at most {mg(most)} to start:"
        " the starting-dose check uses the same number), and watch for muscle weakness,"
        " urinary retention or incontinence, confusion, sedation and falls.")


@rule(11, "abrupt-stop", "warning",
      "established therapy (course start >= {dosing.established_min_days} days ago), and either a"
      " stopped/cancelled draft baclofen order for it, or D1 < D0 x {dosing.abrupt_stop_fraction}"
      " (arbitration: not on a draft that duplicates another order, which continues)",
      "replace the draft with the taper plan from D0 (arbitration writes it)")
def abrupt_stop(facts: Facts):
    def check(draft: Draft) -> Finding | None:
        stopping = _stops_active(facts, draft)
        if not (stopping or (draft.order.oral_baclofen and draft.starting and _deep_cut(facts, draft))):
            return None
        if not facts.established_therapy(draft):
            return None
        taken = f"taken for {int(facts.days_on_course(draft))} days"
        if stopping:
            summary = f"Stopping baclofen {taken}: taper it, do not stop abruptly"
        else:
            d0, _ = facts.current_dose(draft)
            summary = f"Baclofen {d0:g} -> {mg(draft.d1)} ({taken}): taper more gradually"
        return Finding(
            "abrupt-stop", "warning", summary,
            f"Baclofen has been {taken}. Abrupt withdrawal can cause hallucinations, seizures, high"
            " fever, confusion and rebound spasticity: reduce the dose gradually.",
            draft=draft.key, taper=True)
    return each(facts.drafts, check)


def _stops_active(facts: Facts, draft: Draft) -> bool:
    """A stopped/cancelled oral baclofen draft for an active order: linked to one, the order
    itself, or unlinked (most EHRs send no link)."""
    order = draft.order
    if not order.oral_baclofen or order.status not in facts.knowledge["request_status"]["stop_orders"]:
        return False
    active_ids = {o.id for o in facts.active or []}
    unlinked = not (order.links - {order.id})
    return bool(order.links & active_ids) or unlinked


def _deep_cut(facts: Facts, draft: Draft) -> bool:
    d0, _ = facts.current_dose(draft)
    fraction = facts.knowledge.value("dosing", "abrupt_stop_fraction")
    return d0 is not None and draft.d1 is not None and draft.d1 < d0 * fraction


@rule(12, "duplicate-therapy", "warning",
      "draft oral baclofen while another active oral baclofen order, or another baclofen draft of"
      " the same request, exists that the draft does not replace (priorPrescription, same id, or"
      " basedOn)",
      "delete the draft")
def duplicate_therapy(facts: Facts):
    def check(draft: Draft) -> Finding | None:
        others = facts.duplicates(draft)
        if not others:
            return None
        listed = "; ".join(f"{o.name}" + (f" ({mg(o.daily_mg)})" if o.daily_mg else "") for o in others)
        return Finding(
            "duplicate-therapy", "warning",
            f"Baclofen already ordered ({listed}): this order would duplicate it"[:139],
            f"**{draft.order.name}** does not replace the other baclofen order(s): {listed}. Both"
            " would be taken. Keep one: change the existing order instead, or mark it as replaced.",
            [s for s in [actions.suggestion("Remove the new order", actions.delete_draft(draft))] if s],
            draft=draft.key)
    return each(facts.baclofen_drafts, check)


@rule(19, "tolerance", "info",
      "course start >= {dosing.tolerance_min_days} days ago and D1 > D0 (a lapsed course counts"
      " as a renewal)")
def tolerance(facts: Facts):
    minimum = facts.knowledge.value("dosing", "tolerance_min_days")

    def check(draft: Draft) -> Finding | None:
        days = facts.days_on_course(draft)
        d0, _ = facts.current_dose(draft)
        if days is None or days < minimum or d0 is None or draft.d1 is None or draft.d1 <= d0:
            return None
        return Finding(
            "tolerance", "info",
            f"Baclofen for {int(days)} days, dose up {d0:g} -> {mg(draft.d1)}: consider tolerance",
            f"Baclofen has been taken for {int(days)} days and the dose is rising ({mg(d0)} to"
            f" {mg(draft.d1)}). Tolerance develops mostly in the first 1-1.5 years of treatment:"
            " reassess the response before escalating further.", draft=draft.key)
    return each(facts.baclofen_drafts, check)
