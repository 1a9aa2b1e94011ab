"""The patient's oral baclofen course: active therapy, baclofen-naive, current dose D0."""
from __future__ import annotations

from datetime import datetime, timedelta

from .dates import days_between, parse_when
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


# --- the course ----------------------------------------------------------------------------


def order_end(order: Order, now: datetime, knowledge: Knowledge) -> datetime | None:
    """validityPeriod end, else authoredOn + expectedSupplyDuration, else authoredOn + the
    default order length; an active order runs at least until now."""
    dispense = order.resource.get("dispenseRequest") or {}
    end = parse_when((dispense.get("validityPeriod") or {}).get("end"))
    if end is None and order.authored:
        end = order.authored + (_duration(dispense.get("expectedSupplyDuration"), knowledge)
                                or timedelta(days=knowledge.value("dosing", "order_default_days")))
    if order.status in knowledge["request_status"]["active"]:
        end = max(end, now) if end else now
    return end


def _duration(duration, knowledge: Knowledge) -> timedelta | None:
    if not isinstance(duration, dict):
        return None
    value = duration.get("value")
    hours = knowledge.period_hours.get(duration.get("code") or duration.get("unit") or "")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or not hours:
        return None
    return timedelta(hours=value * hours)


def course_orders(history: list[Order], draft: Order, now: datetime, knowledge: Knowledge) -> list[Order]:
    """The orders of the course the draft continues: chained by a link (priorPrescription,
    basedOn, same id) whatever the gap, or following one another with a gap of at most
    `course_gap_days`. Empty when the draft starts a new course."""
    statuses = knowledge["request_status"]["course"]
    orders = [o for o in history if o.status in statuses and o.authored]
    if not orders:
        return []
    spans = [(o.authored, order_end(o, now, knowledge)) for o in orders]
    spans.append((draft.authored or now, now))
    nodes = orders + [draft]
    parent = list(range(len(nodes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in _linked_pairs(nodes):
        parent[root(i)] = root(j)
    gap = timedelta(days=knowledge.value("dosing", "course_gap_days"))
    by_start = sorted(range(len(nodes)), key=lambda i: spans[i][0])
    previous, cluster_end = None, None
    for i in by_start:
        start, end = spans[i]
        if previous is not None and start <= cluster_end + gap:
            parent[root(i)] = root(previous)
            cluster_end = max(cluster_end, end)
        else:
            cluster_end = end
        previous = i
    draft_root = root(len(nodes) - 1)
    return [o for i, o in enumerate(orders) if root(i) == draft_root]


def _linked_pairs(nodes: list[Order]):
    for i, first in enumerate(nodes):
        for j in range(i + 1, len(nodes)):
            second = nodes[j]
            if (first.id and first.id in second.links) or (second.id and second.id in first.links):
                yield i, j


def last_order(orders: list[Order]) -> Order | None:
    dated = [o for o in orders if o.authored]
    return max(dated, key=lambda o: o.authored) if dated else None
