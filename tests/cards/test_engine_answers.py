"""The engine gives exactly the answers it gave when tests/data/engine_answers.json was written:
every fixture story, every hook, complete and failing data (tests/cards/engine_answers.py).
A refactoring or speed-up must not change one character of a card. After a deliberate change
of the answers, rewrite the digests with `python -m tests.cards.engine_answers --update`."""
import copy
import json

from engine_answers import GOLDEN, all_answers, all_cases, answer, digests


def test_every_answer_is_unchanged():
    expected = json.loads(GOLDEN.read_text())
    got = digests(all_answers())
    assert got.keys() == expected.keys()
    changed = sorted(key for key in got if got[key] != expected[key])
    assert not changed, (f"{len(changed)} answers changed, e.g. {changed[:5]}: dump them with"
                         " `python -m tests.cards.engine_answers` on both commits and diff")


def test_the_engine_changes_none_of_its_input():
    """Suggestions share the draft's unchanged elements (cards/dose_writer.py): writing
    them must never change the draft, nor a second call's answer."""
    for key, (relevant, data, knowledge) in all_cases().items():
        before = copy.deepcopy(data)
        first = answer(relevant, data, knowledge)
        assert data == before, key
        assert answer(relevant, data, knowledge) == first, key
