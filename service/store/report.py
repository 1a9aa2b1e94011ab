"""The override report: per card topic, cards shown, accepted, overridden, override rate and
the commonest override reasons. A card's outcome is its latest feedback."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Callable

from sqlalchemy import and_, exists, func, select
from sqlalchemy.engine import Engine

from .schema import cards, feedback
from .store import reading, utc_naive, utcnow

TOP_REASONS = 5
NO_REASON = {"system": "", "code": "", "display": "(no reason given)"}


ReasonDisplay = Callable[[str, str], "str | None"]


def build_report(engine: Engine, since: datetime | None = None,
                 reason_display: ReasonDisplay | None = None) -> dict:
    """`reason_display(topic code, reason code)` names reasons a client sent without a
    display (the Sandbox does); see `knowledge_reason_display`."""
    cutoff = utc_naive(since) if since else datetime.min
    with reading(engine) as connection:
        shown = connection.execute(_shown_query(cutoff)).all()
        outcomes = connection.execute(_outcome_query(cutoff)).all()
        unknown = connection.scalar(_unknown_card_query(cutoff))
    topics = _topics(shown, outcomes, reason_display or _no_display)
    return {
        "generated_at": utcnow().isoformat(timespec="seconds") + "Z",
        "since": since.isoformat() if since else None,
        "topics": topics,
        "totals": _totals(topics),
        "feedback_for_unknown_cards": unknown or 0,
    }


def _shown_query(cutoff: datetime):
    return (select(cards.c.topic_system, cards.c.topic_code,
                   func.max(cards.c.topic_display), func.count())
            .where(cards.c.issued_at >= cutoff)
            .group_by(cards.c.topic_system, cards.c.topic_code))


def _outcome_query(cutoff: datetime):
    latest = (select(feedback.c.card_uuid, func.max(feedback.c.id).label("id"))
              .group_by(feedback.c.card_uuid).subquery())
    return (select(cards.c.topic_system, cards.c.topic_code, feedback.c.outcome,
                   feedback.c.reason_system, feedback.c.reason_code,
                   func.max(feedback.c.reason_display), func.count())
            .select_from(cards.join(latest, latest.c.card_uuid == cards.c.card_uuid)
                         .join(feedback, feedback.c.id == latest.c.id))
            .where(cards.c.issued_at >= cutoff)
            .group_by(cards.c.topic_system, cards.c.topic_code, feedback.c.outcome,
                      feedback.c.reason_system, feedback.c.reason_code))


def _unknown_card_query(cutoff: datetime):
    issued = exists().where(cards.c.card_uuid == feedback.c.card_uuid)
    return (select(func.count()).select_from(feedback)
            .where(and_(feedback.c.received_at >= cutoff, ~issued)))


def knowledge_reason_display(knowledge) -> ReasonDisplay:
    """Reason names from the knowledge file's `override_reasons` (per topic, else default)."""
    def display(topic: str, code: str) -> str | None:
        try:
            reasons = knowledge.override_reasons(topic)
        except (AttributeError, KeyError):
            return None
        return next((r["display"] for r in reasons if r.get("code") == code), None)
    return display


def _no_display(topic: str, code: str) -> None:
    return None


def _topics(shown_rows, outcome_rows, reason_display: ReasonDisplay) -> list[dict]:
    topics = {(system, code): _empty_topic(system, code, display, count)
              for system, code, display, count in shown_rows}
    reasons: dict[tuple, dict] = defaultdict(dict)
    for system, code, outcome, reason_system, reason_code, display, count in outcome_rows:
        topic = topics[(system, code)]
        topic[outcome] += count
        if outcome == "overridden":
            display = display or reason_display(code, reason_code) or ""
            _add_reason(reasons[(system, code)], reason_system, reason_code, display, count)
    for key, topic in topics.items():
        _finish_topic(topic, reasons[key])
    return sorted(topics.values(), key=lambda t: (-t["cards_shown"], t["topic"]["code"]))


def _empty_topic(system: str, code: str, display: str, count: int) -> dict:
    return {"topic": {"system": system, "code": code, "display": display or code},
            "cards_shown": count, "accepted": 0, "overridden": 0}


def _add_reason(reasons: dict, system: str, code: str, display: str, count: int) -> None:
    key = (system, code)
    if key not in reasons:
        coding = {"system": system, "code": code, "display": display or code} if code else NO_REASON
        reasons[key] = {**coding, "count": 0}
    reasons[key]["count"] += count


def _finish_topic(topic: dict, reasons: dict) -> None:
    shown, overridden = topic["cards_shown"], topic["overridden"]
    topic["no_feedback"] = shown - topic["accepted"] - overridden
    topic["override_rate"] = _rate(overridden, shown)
    topic["acceptance_rate"] = _rate(topic["accepted"], shown)
    ranked = sorted(reasons.values(), key=lambda r: (-r["count"], r["code"]))
    topic["override_reasons"] = [{**r, "share": _rate(r["count"], overridden)}
                                 for r in ranked[:TOP_REASONS]]


def _totals(topics: list[dict]) -> dict:
    totals = {name: sum(t[name] for t in topics)
              for name in ("cards_shown", "accepted", "overridden", "no_feedback")}
    totals["override_rate"] = _rate(totals["overridden"], totals["cards_shown"])
    totals["acceptance_rate"] = _rate(totals["accepted"], totals["cards_shown"])
    return totals


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
