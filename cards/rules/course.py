"""Rules 10-12 and 19: the patient's baclofen course (start, stop, duplicates, tolerance)."""
from __future__ import annotations

from .. import actions
from ..cardbuilder import Finding
from ..dates import days_between
from ..facts import Draft, Facts
from ..therapy import earliest_authored, not_replaced
from .base import each, mg, rule


@rule(10, "elderly-start", "info",
      "age >= {age.older_adult_years}, baclofen-naive and a draft oral baclofen")
def elderly_start(facts: Facts):
    if not (facts.baclofen_drafts and facts.older_adult and facts.naive):
        return None
    start = facts.knowledge.value("dosing", "elderly_start_text")
    return Finding(
        "elderly-start", "info", f"Age {facts.age}: start baclofen low ({start.split(' (')[0]})",
        f"Starting baclofen at age {facts.age}: start low, {start}, and watch for muscle weakness,"
        " urinary retention or incontinence, confusion, sedation and falls.")


def _days_on_baclofen(facts: Facts) -> float | None:
    first = earliest_authored(facts.history or [])
    return days_between(first, facts.now) if first else None


@rule(11, "abrupt-stop", "warning",
      "active therapy whose earliest order was authored >= {dosing.abrupt_stop_min_days} days"
      " ago, and a stopped/cancelled draft baclofen order for it, or D1 < D0 x"
      " {dosing.abrupt_stop_fraction}",
      "none; the detail says to taper gradually")
def abrupt_stop(facts: Facts):
    stops = [d for d in facts.drafts if _stops_active(facts, d)]
    cuts = [d for d in facts.baclofen_drafts if _halves(facts, d)]
    # A stop draft is often the active order itself (same id, original authoredOn): the
    # service then leaves it out of the patient's orders, so the draft dates the course too.
    first = earliest_authored((facts.history or []) + [d.order for d in stops])
    days = days_between(first, facts.now) if first else None
    if days is None or days < facts.knowledge.value("dosing", "abrupt_stop_min_days"):
        return None
    if not stops and not cuts:
        return None
    taken = f"taken for {int(days)} days"
    if stops:
        summary = f"Stopping baclofen {taken}: taper it, do not stop abruptly"
    else:
        d0, _ = facts.current_dose(cuts[0])
        summary = f"Baclofen {d0:g} -> {mg(cuts[0].d1)} ({taken}): taper more gradually"
    return Finding(
        "abrupt-stop", "warning", summary,
        f"Baclofen has been {taken}. Abrupt withdrawal can cause hallucinations, seizures, high"
        " fever, confusion and rebound spasticity: reduce the dose gradually over 1-2 weeks or"
        " more (label warning).")


def _stops_active(facts: Facts, draft: Draft) -> bool:
    """A stopped/cancelled oral baclofen draft for an active order: linked to one, the order
    itself, or unlinked (most EHRs send no link)."""
    order = draft.order
    if not order.oral_baclofen or order.status not in facts.knowledge["request_status"]["stop_orders"]:
        return False
    active_ids = {o.id for o in facts.active or []}
    unlinked = not (order.links - {order.id})
    return bool(order.links & active_ids) or unlinked


def _halves(facts: Facts, draft: Draft) -> bool:
    d0, _ = facts.current_dose(draft)
    fraction = facts.knowledge.value("dosing", "abrupt_stop_fraction")
    return d0 is not None and draft.d1 is not None and draft.d1 < d0 * fraction


@rule(12, "duplicate-therapy", "warning",
      "draft oral baclofen while another active oral baclofen order exists that the draft does"
      " not replace (priorPrescription, same id, or basedOn)",
      "delete the draft")
def duplicate_therapy(facts: Facts):
    def check(draft: Draft) -> Finding | None:
        others = not_replaced(facts.active or [], draft.order)
        if not others:
            return None
        listed = "; ".join(f"{o.name}" + (f" ({mg(o.daily_mg)})" if o.daily_mg else "") for o in others)
        return Finding(
            "duplicate-therapy", "warning",
            f"Baclofen already active ({listed}): this order would duplicate it"[:139],
            f"**{draft.order.name}** does not replace the active order(s): {listed}. Both would"
            " be taken. Change the existing order instead, or mark it as replaced.",
            [s for s in [actions.suggestion("Remove the new order", actions.delete_draft(draft))] if s])
    return each(facts.baclofen_drafts, check)


@rule(19, "tolerance", "info",
      "earliest oral baclofen order of the patient authored >= {dosing.tolerance_min_days} days"
      " ago and D1 > D0")
def tolerance(facts: Facts):
    days = _days_on_baclofen(facts)
    if days is None or days < facts.knowledge.value("dosing", "tolerance_min_days"):
        return None

    def check(draft: Draft) -> Finding | None:
        d0, _ = facts.current_dose(draft)
        if d0 is None or draft.d1 is None or draft.d1 <= d0:
            return None
        return Finding(
            "tolerance", "info",
            f"Baclofen for {int(days)} days, dose up {d0:g} -> {mg(draft.d1)}: consider tolerance",
            f"Baclofen has been taken for {int(days)} days and the dose is rising ({mg(d0)} to"
            f" {mg(draft.d1)}). Tolerance can develop with long-term use: reassess the benefit"
            " before escalating.")
    return each(facts.baclofen_drafts, check)
