"""The rules of rules.md, one function each, registered in catalog order."""
from __future__ import annotations

from . import avoid, course, data, dosing, electrolytes, indication, next_steps, renal  # noqa: F401
from .base import REGISTRY, Rule

RULES: tuple[Rule, ...] = tuple(sorted(REGISTRY, key=lambda r: r.number))

__all__ = ["RULES", "Rule"]
