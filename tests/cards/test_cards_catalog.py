"""docs/rules.md is the rendered catalog of the default knowledge: fail when they drift."""
from pathlib import Path

from cards.catalog import render_catalog
from cards.knowledge import load_knowledge
from cards.rules import RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "rules.md"


def test_docs_rules_md_matches_the_catalog():
    assert DOC.read_text(encoding="utf-8") == render_catalog(load_knowledge()), (
        "regenerate: python -c 'from cards.catalog import render_catalog; from cards.knowledge"
        " import load_knowledge; print(render_catalog(load_knowledge()), end=\"\")' > docs/rules.md")


def test_catalog_lists_the_rules_of_catalog_v2_with_live_values():
    assert [rule.number for rule in RULES] == list(range(1, 23))
    text = render_catalog(load_knowledge({"renal": {"avoid_below_egfr": 25}}))
    assert "eGFR < 25 mL/min/1.73m2" in text
    assert all(f"`{topic}`" in text for topic in load_knowledge().topics)
