"""The override report: per card topic, cards shown, suppressed, accepted, overridden, override
rate, the commonest override reasons and the alert burden (cards per 100 baclofen orders), also
week by week. A card's outcome is its latest feedback."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Callable

from sqlalchemy import and_, exists, func, select
from sqlalchemy.engine import Engine

from .schema import baclofen_orders, cards, feedback, suppressed_cards
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
        shown_days = connection.execute(_by_day(cards, cards.c.issued_at, cutoff)).all()
        outcome_days = connection.execute(_outcome_by_day_query(cutoff)).all()
        suppressed = connection.execute(_suppressed_query(cutoff)).all()
        orders = connection.execute(_orders_query(cutoff)).all()
    topics = _topics(shown, outcomes, reason_display or _no_display)
    burden = _burden(topics, suppressed, shown_days, outcome_days, orders)
    return {
        "generated_at": utcnow().isoformat(timespec="seconds") + "Z",
        "since": since.isoformat() if since else None,
        "topics": topics,
        "totals": _totals(topics),
        "feedback_for_unknown_cards": unknown or 0,
        "burden": burden,
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


def _day(column):
    """The UTC date of a timestamp, in SQL (a string on SQLite, a date on PostgreSQL)."""
    return func.date(column)


def _by_day(table, moment, cutoff: datetime, *columns):
    day = _day(moment)
    return (select(table.c.topic_code, *columns, day, func.count()).where(moment >= cutoff)
            .group_by(table.c.topic_code, *columns, day))


def _outcome_by_day_query(cutoff: datetime):
    latest = (select(feedback.c.card_uuid, func.max(feedback.c.id).label("id"))
              .group_by(feedback.c.card_uuid).subquery())
    day = _day(cards.c.issued_at)
    return (select(cards.c.topic_code, feedback.c.outcome, day, func.count())
            .select_from(cards.join(latest, latest.c.card_uuid == cards.c.card_uuid)
                         .join(feedback, feedback.c.id == latest.c.id))
            .where(cards.c.issued_at >= cutoff)
            .group_by(cards.c.topic_code, feedback.c.outcome, day))


def _suppressed_query(cutoff: datetime):
    table, day = suppressed_cards, _day(suppressed_cards.c.suppressed_at)
    return (select(table.c.topic_system, table.c.topic_code, func.max(table.c.topic_display),
                   table.c.why, table.c.reason_code, day, func.count())
            .where(table.c.suppressed_at >= cutoff)
            .group_by(table.c.topic_system, table.c.topic_code, table.c.why, table.c.reason_code, day))


def _orders_query(cutoff: datetime):
    """Distinct baclofen orders (patient hash, draft key) by the day they were seen."""
    table = baclofen_orders
    return (select(table.c.patient_hash, table.c.draft_key, _day(table.c.called_at))
            .where(table.c.called_at >= cutoff).distinct())


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


# -- alert burden: suppressed cards and cards per 100 baclofen orders, by week ----------------
def _week(day) -> str:
    """The Monday of the day's ISO week, as YYYY-MM-DD."""
    moment = date.fromisoformat(str(day)[:10])
    return (moment - timedelta(days=moment.weekday())).isoformat()


def _per_100(cards_count: int, orders: int) -> float | None:
    return round(100 * cards_count / orders, 1) if orders else None


def _burden(topics: list[dict], suppressed_rows, shown_days, outcome_days, order_rows) -> dict:
    """Adds suppressed counts and the burden to each topic; returns the report's totals of it."""
    orders_by_week: dict[str, set] = defaultdict(set)
    for patient_hash, draft_key, day in order_rows:
        orders_by_week[_week(day)].add((patient_hash, draft_key))
    orders = len(set().union(*orders_by_week.values()))
    weeks: dict[tuple[str, str], dict] = defaultdict(lambda: dict.fromkeys(
        ("shown", "suppressed", "accepted", "overridden"), 0))
    for code, day, count in shown_days:
        weeks[(code, _week(day))]["shown"] += count
    for code, outcome, day, count in outcome_days:
        weeks[(code, _week(day))][outcome] += count
    by_code = {topic["topic"]["code"]: topic for topic in topics}
    for system, code, display, why, reason_code, day, count in suppressed_rows:
        topic = by_code.get(code)
        if topic is None:  # every card of the topic was suppressed
            topic = by_code[code] = _empty_topic(system, code, display, 0)
            _finish_topic(topic, {})
            topics.append(topic)
        topic.setdefault("suppressed_by", {})
        label = why if why != "snooze" else f"snooze:{reason_code}"
        topic["suppressed_by"][label] = topic["suppressed_by"].get(label, 0) + count
        weeks[(code, _week(day))]["suppressed"] += count
    for code, topic in by_code.items():
        topic.setdefault("suppressed_by", {})
        topic["suppressed"] = sum(topic["suppressed_by"].values())
        topic["cards_per_100_orders"] = _per_100(topic["cards_shown"], orders)
        topic["weeks"] = [{"week": week, **counts,
                           "cards_per_100_orders": _per_100(counts["shown"], len(orders_by_week[week]))}
                          for (topic_code, week), counts in sorted(weeks.items()) if topic_code == code]
    all_weeks = sorted({week for _, week in weeks} | set(orders_by_week))
    shown = sum(t["cards_shown"] for t in topics)
    return {
        "baclofen_orders": orders, "cards_shown": shown,
        "suppressed": sum(t["suppressed"] for t in topics),
        "cards_per_100_orders": _per_100(shown, orders),
        "weeks": [_week_totals(week, weeks, len(orders_by_week[week])) for week in all_weeks],
    }


def _week_totals(week: str, weeks: dict, orders: int) -> dict:
    shown = sum(c["shown"] for (_, w), c in weeks.items() if w == week)
    suppressed = sum(c["suppressed"] for (_, w), c in weeks.items() if w == week)
    return {"week": week, "baclofen_orders": orders, "shown": shown, "suppressed": suppressed,
            "cards_per_100_orders": _per_100(shown, orders)}
