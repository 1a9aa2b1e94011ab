"""Everything the rules read about one hook call, computed once from the HookData."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property

from . import therapy
from .codes import concepts_of
from .dates import age_on, days_between, parse_date
from .hookdata import CREATININE, EGFR, MEDS, PATIENT, HookData
from .indication import condition_is_active, indication, reason_concepts
from .knowledge import Knowledge
from .labs import LabValue, lab_values, latest_within
from .medication import Order, read_order
from .renal import RenalValue, latest_renal


@dataclass(frozen=True)
class Draft:
    order: Order
    starting: bool  # not a stop/cancel/complete order
    reason: frozenset  # condition concepts of its reasonCode/reasonReference
    indication: str  # cramps | spasticity | rheumatic | cerebral | unknown
    key: str = ""  # stable per draft in one request: its id, else "#<index>"

    @property
    def d1(self) -> float | None:
        return self.order.daily_mg

    @property
    def oral_baclofen_start(self) -> bool:
        return self.starting and self.order.oral_baclofen


class Facts:
    """Lazily computed, so a request about a non-baclofen draft reads no labs."""

    def __init__(self, data: HookData, knowledge: Knowledge):
        self.data = data
        self.knowledge = knowledge
        self.now: datetime = data.now
        self.stu3 = data.fhir_version.upper() == "STU3"
        self.unavailable = data.unavailable

    # --- patient -------------------------------------------------------------------------
    @cached_property
    def birth_date(self) -> date | None:
        return parse_date((self.data.patient or {}).get("birthDate"))

    @cached_property
    def gender(self) -> str | None:
        return (self.data.patient or {}).get("gender")

    @cached_property
    def age(self) -> int | None:
        return age_on(self.birth_date, self.now.date()) if self.birth_date else None

    @cached_property
    def adult(self) -> bool | None:
        return None if self.age is None else self.age >= self.knowledge.value("age", "adult_years")

    @cached_property
    def older_adult(self) -> bool:
        return self.age is not None and self.age >= self.knowledge.value("age", "older_adult_years")

    # --- conditions ----------------------------------------------------------------------
    @cached_property
    def _conditions(self) -> list[tuple[dict, frozenset]]:
        return [(c, concepts_of(c.get("code"), self.knowledge)) for c in self.data.conditions]

    @cached_property
    def condition_concepts(self) -> dict[str, frozenset]:
        """Concepts of every Condition by id (reasonReference may point at any of them)."""
        return {c["id"]: concepts for c, concepts in self._conditions if c.get("id")}

    @cached_property
    def active_conditions(self) -> frozenset:
        active = [concepts for c, concepts in self._conditions
                  if condition_is_active(c, self.knowledge)]
        return frozenset().union(*active)

    @property
    def dialysis(self) -> bool:
        return "dialysis" in self.active_conditions

    @property
    def cirrhosis(self) -> bool:
        return "cirrhosis" in self.active_conditions

    # --- labs ----------------------------------------------------------------------------
    @cached_property
    def labs(self) -> dict[str, list[LabValue]]:
        return lab_values(self.data.observations, self.knowledge)

    @cached_property
    def renal(self) -> RenalValue | None:
        return latest_renal(self.labs, self.birth_date, self.gender, self.knowledge)

    @cached_property
    def renal_stale(self) -> bool:
        lookback = self.knowledge.value("renal", "lookback_days")
        return self.renal is not None and days_between(self.renal.when, self.now) > lookback

    @property
    def renal_query_failed(self) -> bool:
        return any(key in self.unavailable for key in (EGFR, CREATININE)) or (
            PATIENT in self.unavailable and bool(self.labs.get("creatinine")))

    def recent_lab(self, name: str) -> LabValue | None:
        lookback = self.knowledge.value("electrolytes", "lookback_days")
        return latest_within(self.labs.get(name, []), self.now, lookback)

    # --- medication history --------------------------------------------------------------
    @cached_property
    def history(self) -> list[Order] | None:
        """The patient's oral baclofen orders; None when the medication query failed."""
        if MEDS in self.unavailable:
            return None
        orders = [read_order(r, self.data.medications, self.knowledge)
                  for r in self.data.medication_requests]
        return therapy.baclofen_history(orders, self.knowledge)

    @cached_property
    def active(self) -> list[Order] | None:
        return None if self.history is None else therapy.active_orders(self.history, self.knowledge)

    @cached_property
    def naive(self) -> bool | None:
        if self.history is None:
            return None
        return therapy.is_naive(self.history, self.active, self.now, self.knowledge)

    def current_dose(self, draft: Draft) -> tuple[float | None, list[Order]]:
        """D0 and the active orders it sums (see therapy.changed_orders)."""
        if not self.active:
            return None, []
        changed = therapy.changed_orders(self.active, draft.order)
        return therapy.total_dose(changed), changed

    def course_start(self, draft: Draft) -> datetime | None:
        """The earliest authoredOn of the course the draft continues (None: no course)."""
        return therapy.earliest_authored((self.history or []) + [draft.order])

    def established_therapy(self, draft: Draft) -> bool:
        start = self.course_start(draft)
        minimum = self.knowledge.value("dosing", "abrupt_stop_min_days")
        return start is not None and days_between(start, self.now) >= minimum

    def last_dose_change(self, draft: Draft) -> datetime | None:
        """The latest authoredOn among the orders the draft replaces."""
        return therapy.latest_authored(self.current_dose(draft)[1])

    # --- drafts --------------------------------------------------------------------------
    @cached_property
    def drafts(self) -> list[Draft]:
        return [self._draft(request, index) for index, request in enumerate(self.data.drafts)]

    def _draft(self, request: dict, index: int = 0) -> Draft:
        order = read_order(request, self.data.medications, self.knowledge)
        starting = order.status not in self.knowledge["request_status"]["stopping"]
        reason, has_reason = reason_concepts(request, self.condition_concepts, self.knowledge)
        return Draft(order, starting, reason, indication(reason, has_reason, self.active_conditions),
                     key=order.id or f"#{index}")

    @cached_property
    def baclofen_drafts(self) -> list[Draft]:
        """Starting or continuing oral baclofen drafts: what most rules look at."""
        return [d for d in self.drafts if d.oral_baclofen_start]

    @cached_property
    def cramp_context(self) -> bool:
        return bool(self.baclofen_drafts or self.active or
                    {"cramps", "cirrhosis"} & self.active_conditions)
