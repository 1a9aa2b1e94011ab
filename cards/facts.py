"""Everything the rules read about one hook call, computed once from the HookData."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime

from . import therapy
from .codes import coded, concepts_of
from .dates import age_on, days_between, parse_date, parse_when
from .hookdata import CREATININE, EGFR, MEDS, PATIENT, HookData
from .indication import condition_counts, condition_is_active, indication, reason_concepts
from .knowledge import Knowledge
from .labs import LabValue, Unreadable, latest_within, read_labs
from .medication import Order, read_order, read_orders_of_kind
from .renal import RenalValue, latest_renal


class cached:  # noqa: N801 (a decorator, like functools.cached_property)
    """functools.cached_property without its lock, which in Python 3.11 costs more than most
    of these facts: a Facts belongs to one hook call, read by one thread."""

    def __init__(self, compute):
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __get__(self, facts, owner=None):
        if facts is None:
            return self
        value = facts.__dict__[self.name] = self.compute(facts)
        return value


def per_draft(compute):
    """A Facts method of one draft, computed once per draft (several rules ask)."""
    name = compute.__name__

    def cached_for(facts, draft):
        key = (name, id(draft))
        if key not in facts._per_draft:
            facts._per_draft[key] = (draft, compute(facts, draft))  # the draft keeps its id
        return facts._per_draft[key][1]
    return functools.wraps(compute)(cached_for)


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
        self._courses: dict[str, list[Order]] = {}
        self._per_draft: dict[tuple[str, int], tuple[Draft, object]] = {}

    # --- patient -------------------------------------------------------------------------
    @cached
    def birth_date(self) -> date | None:
        return parse_date((self.data.patient or {}).get("birthDate"))

    @cached
    def gender(self) -> str | None:
        return (self.data.patient or {}).get("gender")

    @cached
    def age(self) -> int | None:
        return age_on(self.birth_date, self.now.date()) if self.birth_date else None

    @cached
    def adult(self) -> bool | None:
        return None if self.age is None else self.age >= self.knowledge.value("age", "adult_years")

    @cached
    def older_adult(self) -> bool:
        return self.age is not None and self.age >= self.knowledge.value("age", "older_adult_years")

    # --- conditions ----------------------------------------------------------------------
    @cached
    def _conditions(self) -> list[tuple[dict, frozenset]]:
        return [(c, concepts_of(c.get("code"), self.knowledge)) for c in self.data.conditions]

    @cached
    def condition_concepts(self) -> dict[str, frozenset]:
        """Concepts of every Condition by id (reasonReference may point at any of them, but
        a refuted or entered-in-error one never counts)."""
        return {c["id"]: concepts for c, concepts in self._conditions
                if c.get("id") and condition_counts(c, self.knowledge)}

    @cached
    def active_conditions(self) -> frozenset:
        active = [concepts for c, concepts in self._conditions
                  if condition_is_active(c, self.knowledge)]
        return frozenset().union(*active)

    @cached
    def dialysis(self) -> bool:
        return "dialysis" in self.active_conditions or self.dialysis_procedure is not None

    @cached
    def dialysis_procedure(self) -> datetime | None:
        """When the latest dialysis Procedure (completed or in progress) of the lookback was done."""
        section = self.knowledge["dialysis_procedures"]
        codes = _dialysis_codes(self.knowledge)
        found = [when for p in self.data.procedures
                 if p.get("status") in section["statuses"] and codes & set(coded(p.get("code")))
                 and (when := _performed(p)) and 0 <= days_between(when, self.now) <= section["lookback_days"]]
        return max(found) if found else None

    @property
    def cirrhosis(self) -> bool:
        return "cirrhosis" in self.active_conditions

    # --- labs ----------------------------------------------------------------------------
    @cached
    def labs(self) -> dict[str, list[LabValue]]:
        return self._labs[0]

    @cached
    def renal(self) -> RenalValue | None:
        return latest_renal(self.labs, self.birth_date, self.gender, self.knowledge)

    @cached
    def renal_unreadable(self) -> Unreadable | None:
        """The latest renal result that could not be read, when newer than the value used."""
        unreadable = self.unreadable_labs
        candidates = [unreadable[name] for name in ("egfr", "creatinine") if name in unreadable]
        latest = max(candidates, key=lambda u: u.when) if candidates else None
        if latest and (self.renal is None or latest.when > self.renal.when):
            return latest
        return None

    @property
    def renal_usable(self) -> bool:
        """A renal value within the lookback."""
        return self.renal is not None and not self.renal_stale

    @cached
    def renal_stale(self) -> bool:
        lookback = self.knowledge.value("renal", "lookback_days")
        return self.renal is not None and days_between(self.renal.when, self.now) > lookback

    @property
    def renal_query_failed(self) -> bool:
        return any(key in self.unavailable for key in (EGFR, CREATININE)) or (
            PATIENT in self.unavailable and bool(self.labs.get("creatinine")))

    @cached
    def unreadable_labs(self) -> dict[str, Unreadable]:
        return self._labs[1]

    @cached
    def _labs(self) -> tuple[dict[str, list[LabValue]], dict[str, Unreadable]]:
        return read_labs(self.data.observations, self.knowledge)

    def recent_lab(self, name: str) -> LabValue | None:
        lookback = self.knowledge.value("electrolytes", "lookback_days")
        return latest_within(self.labs.get(name, []), self.now, lookback)

    # --- medication history --------------------------------------------------------------
    @cached
    def history(self) -> list[Order] | None:
        """The patient's oral baclofen orders; None when the medication query failed."""
        if MEDS in self.unavailable:
            return None
        orders = read_orders_of_kind(self.data.medication_requests, "baclofen", self.data.medications,
                                     self.knowledge, as_of=self.now)
        return therapy.baclofen_history(orders, self.knowledge)

    @cached
    def active(self) -> list[Order] | None:
        return None if self.history is None else therapy.active_orders(self.history, self.knowledge)

    @cached
    def naive(self) -> bool | None:
        if self.history is None:
            return None
        return therapy.is_naive(self.history, self.active, self.now, self.knowledge)

    @per_draft
    def current_dose(self, draft: Draft) -> tuple[float | None, list[Order]]:
        """D0 and the orders it sums: the active orders the draft replaces (all of them when
        it links to none); for a lapsed course, the course's last order."""
        if self.active:
            changed = therapy.changed_orders(self.active, draft.order)
        elif self.lapsed(draft):
            changed = [therapy.last_order(self.course(draft))]
        else:
            return None, []
        return therapy.total_dose(changed), changed

    def course(self, draft: Draft) -> list[Order]:
        """The orders of the course the draft continues (empty: it starts one)."""
        if draft.key not in self._courses:
            self._courses[draft.key] = therapy.course_orders(
                self.history or [], draft.order, self.now, self.knowledge)
        return self._courses[draft.key]

    @per_draft
    def lapsed(self, draft: Draft) -> bool:
        """No active therapy, but the draft continues a course whose last order ended at most
        `course_gap_days` ago."""
        if self.active or self.history is None:
            return False
        ends = [therapy.order_end(o, self.now, self.knowledge) for o in self.course(draft)]
        gap = self.knowledge.value("dosing", "course_gap_days")
        return any(end and days_between(end, self.now) <= gap for end in ends)

    def naive_for(self, draft: Draft) -> bool | None:
        """Baclofen-naive; a draft that continues a lapsed course never is."""
        return self.naive and not self.lapsed(draft)

    def course_start(self, draft: Draft) -> datetime | None:
        """The earliest authoredOn of the course the draft continues (the draft's own when it
        starts one: a stop draft may be the active order itself, with its original date)."""
        return therapy.earliest_authored(self.course(draft) + [draft.order])

    @per_draft
    def days_on_course(self, draft: Draft) -> float | None:
        start = self.course_start(draft)
        return days_between(start, self.now) if start else None

    def established_therapy(self, draft: Draft) -> bool:
        days = self.days_on_course(draft)
        return days is not None and days >= self.knowledge.value("dosing", "established_min_days")

    def last_dose_change(self, draft: Draft) -> datetime | None:
        """The latest authoredOn among the orders the draft replaces."""
        return therapy.latest_authored(self.current_dose(draft)[1])

    # --- drafts --------------------------------------------------------------------------
    @cached
    def drafts(self) -> list[Draft]:
        return [self._draft(request, index) for index, request in enumerate(self.data.drafts)]

    def _draft(self, request: dict, index: int = 0, prefix: str = "#") -> Draft:
        order = read_order(request, self.data.medications, self.knowledge)
        starting = order.status not in self.knowledge["request_status"]["stopping"]
        by_id = self.condition_concepts if request.get("reasonReference") else {}
        reason, has_reason = reason_concepts(request, by_id, self.knowledge)
        return Draft(order, starting, reason, indication(reason, has_reason, self.active_conditions),
                     key=order.id or f"{prefix}{index}")

    @cached
    def other_drafts(self) -> list[Draft]:
        """order-select: the unselected draft orders (not judged themselves)."""
        return [self._draft(request, index, "other#") for index, request in enumerate(self.data.other_drafts)]

    @cached
    def baclofen_drafts(self) -> list[Draft]:
        """Starting or continuing oral baclofen drafts: what most rules look at."""
        return [d for d in self.drafts if d.oral_baclofen_start]

    def duplicates(self, draft: Draft) -> list[Order]:
        """Active orders and other baclofen drafts of the request that the draft does not
        replace (rule 12): two drafts in one request are duplicates of each other."""
        others = [d.order for d in self.drafts + self.other_drafts
                  if d.oral_baclofen_start and d.key != draft.key]
        unlinked = [o for o in others if not _linked(o, draft.order)]
        return therapy.not_replaced(self.active or [], draft.order) + unlinked

    def unreplaced_active(self) -> list[Order]:
        """Active orders that no draft of the request replaces."""
        return [o for o in self.active or []
                if not any(o.id in d.order.links for d in self.drafts + self.other_drafts)]

    @cached
    def cramp_context(self) -> bool:
        other_baclofen = any(d.oral_baclofen_start for d in self.other_drafts)
        return bool(self.baclofen_drafts or other_baclofen or self.active or
                    {"cramps", "cirrhosis"} & self.active_conditions)


def _linked(first: Order, second: Order) -> bool:
    return bool((first.id and first.id in second.links) or (second.id and second.id in first.links))


@functools.lru_cache(maxsize=64)
def _dialysis_codes(knowledge: Knowledge) -> frozenset[tuple[str, str]]:
    section, systems = knowledge["dialysis_procedures"], knowledge.systems
    return frozenset({(systems["snomed"], c) for c in section["snomed"]}
                     | {(systems["cpt"], c) for c in section["cpt"]})


def _performed(procedure: dict) -> datetime | None:
    period = procedure.get("performedPeriod") or {}
    for text in (procedure.get("performedDateTime"), period.get("end"), period.get("start")):
        when = parse_when(text)
        if when:
            return when
    return None
