"""The patient's oral baclofen course: active therapy, baclofen-naive, current dose D0."""
from __future__ import annotations

from datetime import datetime

from .dates import days_between
from .knowledge import Knowledge
from .medication import Order


def baclofen_history(orders: list[Order], knowledge: Knowledge) -> list[Order]:
    """The patient's oral baclofen MedicationRequests that count (no drafts, no errors)."""
    excluded = knowledge["request_status"]["history_excluded"]
    return [o for o in orders if o.oral_baclofen and o.status not in excluded]


def active_orders(history: list[Order], knowledge: Knowledge) -> list[Order]:
    return [o for o in history if o.status in knowledge["request_status"]["active"]]


def not_replaced(active: list[Order], draft: Order) -> list[Order]:
    """Active orders the draft leaves in place (it replaces those it links to or shares an id with)."""
    return [o for o in active if o.id not in draft.links]


def changed_orders(active: list[Order], draft: Order) -> list[Order]:
    """The active orders whose dose the draft changes: those it replaces, or, when it links to
    none (most EHRs and the Sandbox do not link), all of them."""
    replaced = [o for o in active if o.id in draft.links]
    return replaced or active


def total_dose(orders: list[Order]) -> float | None:
    doses = [o.daily_mg for o in orders]
    if not doses or any(d is None for d in doses):
        return None
    return sum(doses)


def is_naive(history: list[Order], active: list[Order], now: datetime, knowledge: Knowledge) -> bool:
    window = knowledge.value("dosing", "naive_lookback_days")
    recent = [o for o in history if o.authored and days_between(o.authored, now) <= window]
    return not active and not recent


def earliest_authored(orders: list[Order]) -> datetime | None:
    dates = [o.authored for o in orders if o.authored]
    return min(dates) if dates else None


def latest_authored(orders: list[Order]) -> datetime | None:
    dates = [o.authored for o in orders if o.authored]
    return max(dates) if dates else None
