"""Findings of the rules -> CDS Hooks cards: one card per topic, ordered by severity."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from .knowledge import Knowledge

SEVERITY = {"critical": 0, "warning": 1, "info": 2}
MAX_SUMMARY = 139


@dataclass(frozen=True)
class DoseLimit:
    mg: float  # daily dose this rule would set (mg/day), before rounding
    name: str  # what set it, for the card text: "the renal limit", "the starting dose"...


@dataclass
class Finding:
    topic: str
    indicator: str
    summary: str
    detail: str  # Markdown
    suggestions: list[dict] = field(default_factory=list)
    selection: str = "at-most-one"  # "any" when the suggestions complement each other
    draft: str | None = None  # Draft.key of the draft the finding is about
    dose_limit: DoseLimit | None = None  # rules 2, 7, 8, 9: the daily dose this rule allows
    taper: bool = False  # rule 11: wants the taper plan from D0
    source: str | None = None  # key in [sources] when not the topic's (cramps dose numbers)

    def revised(self, **changes) -> Finding:
        """A copy with `changes`: dataclasses.replace in a third of its time (arbitration
        revises most findings it plans)."""
        return Finding(**{**vars(self), **changes})


def build_cards(findings: list[Finding], knowledge: Knowledge) -> list[dict]:
    by_topic: dict[str, list[Finding]] = {}
    for finding in findings:
        by_topic.setdefault(finding.topic, []).append(finding)
    order = knowledge.topic_order
    cards = [_card(sorted(group, key=lambda f: SEVERITY[f.indicator]), knowledge)
             for group in by_topic.values()]
    cards.sort(key=lambda c: (SEVERITY[c["indicator"]], order[c["source"]["topic"]["code"]]))
    return cards


def _card(group: list[Finding], knowledge: Knowledge) -> dict:
    first = group[0]
    summary = first.summary
    if len(group) > 1:
        summary = f"{summary} (+{len(group) - 1} more order{'s' if len(group) > 2 else ''})"
    card = {
        "uuid": str(uuid.uuid4()),
        "summary": _shorten(summary),
        "indicator": first.indicator,
        "detail": "\n\n".join(f.detail for f in group),
        "source": _source(first, knowledge),
    }
    suggestions = [dict(s, uuid=str(uuid.uuid4())) for f in group for s in f.suggestions]
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "any" if any(f.selection == "any" for f in group) else "at-most-one"
    if first.indicator != "info":
        card["overrideReasons"] = _override_reasons(first.topic, knowledge)
    return card


def _source(finding: Finding, knowledge: Knowledge) -> dict:
    """The source of the card's numbers; the detail does not repeat it."""
    topic = finding.topic
    source = knowledge["sources"][finding.source] if finding.source else knowledge.source_for(topic)
    result = {"label": source["label"]}
    if source["url"]:
        result["url"] = source["url"]
    result["topic"] = {"system": knowledge.value("project", "topic_system"), "code": topic,
                       "display": knowledge.topic(topic)["display"]}
    return result


def _override_reasons(topic: str, knowledge: Knowledge) -> list[dict]:
    system = knowledge.value("project", "override_reason_system")
    return [{"system": system, "code": r["code"], "display": r["display"]}
            for r in knowledge.override_reasons(topic)]


def _shorten(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY else text[:MAX_SUMMARY - 1].rstrip() + "…"
