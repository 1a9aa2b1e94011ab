"""The rule registry: each rule is a small function of the Facts, with its catalog text."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterable

from ..cardbuilder import Finding
from ..knowledge import Knowledge

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\.([a-z_]+)\}")


@dataclass(frozen=True)
class Rule:
    number: int
    topic: str
    indicator: str
    when: str  # catalog text; {section.key} is replaced by the live knowledge value
    suggests: str
    evaluate: Callable  # (Facts) -> Finding | Iterable[Finding] | None

    def condition(self, knowledge: Knowledge) -> str:
        return fill(self.when, knowledge)

    def findings(self, facts) -> list[Finding]:
        result = self.evaluate(facts)
        if result is None:
            return []
        return [result] if isinstance(result, Finding) else [f for f in result if f]


REGISTRY: list[Rule] = []


def rule(number: int, topic: str, indicator: str, when: str, suggests: str = "none"):
    def register(function: Callable) -> Callable:
        REGISTRY.append(Rule(number, topic, indicator, when, suggests, function))
        return function
    return register


def fill(text: str, knowledge: Knowledge) -> str:
    return _PLACEHOLDER.sub(lambda m: f"{knowledge.value(m[1], m[2]):g}"
                            if isinstance(knowledge.value(m[1], m[2]), (int, float))
                            else str(knowledge.value(m[1], m[2])), text)


def each(drafts: Iterable, check: Callable) -> list[Finding]:
    found = []
    for draft in drafts:
        finding = check(draft)
        if finding:
            found.append(finding)
    return found


def mg(value: float) -> str:
    return f"{value:g} mg/day"
