"""Retention: `baclofen-cds purge --older-than 365d` deletes old cards and feedback and
every expired JWT id; recent rows stay."""
from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import update

from service.store import FeedbackItem
from service.store.commands import main as store_cli
from service.store.commands import parse_duration
from service.store.schema import cards, feedback

from .helpers import ORDER_SIGN, PATIENT_ID, make_card

def _now() -> datetime:
    """Read at each use: a module-level "now" goes stale in a long (coverage) run."""
    return datetime.now(timezone.utc)


def _age_everything(store, days: int) -> None:
    old = (_now() - timedelta(days=days)).replace(tzinfo=None)
    with store.engine.begin() as connection:
        connection.execute(update(cards).values(issued_at=old))
        connection.execute(update(feedback).values(received_at=old))


def _issue_with_feedback(store) -> None:
    card = make_card("renal-dose")
    store.record_cards(ORDER_SIGN, "order-sign", "h", PATIENT_ID, [card])
    store.record_feedback(ORDER_SIGN, [FeedbackItem(card=card["uuid"], outcome="overridden", outcome_at=_now())])


def test_purge_deletes_only_rows_older_than_the_cutoff(store):
    _issue_with_feedback(store)
    _age_everything(store, 400)
    _issue_with_feedback(store)
    now = _now()
    store.claim_jti("expired", now - timedelta(minutes=1))
    store.claim_jti("live", now + timedelta(minutes=5))
    result = store.purge(now - timedelta(days=365))
    assert (result.cards, result.feedback, result.jwt_ids) == (1, 1, 1)
    assert store.counts() == {"cards": 1, "feedback": 1, "jwt_ids": 1}
    assert store.claim_jti("live", now + timedelta(minutes=5)) is False


def test_purge_command_uses_the_given_age(config, store, monkeypatch, capsys):
    monkeypatch.setenv("BACLOFEN_CDS_SERVER__INSTANCE_PATH", str(config.instance_path))
    monkeypatch.setenv("BACLOFEN_CDS_STORE__URL", config.store.url)
    _issue_with_feedback(store)
    _age_everything(store, 40)
    assert store_cli(["purge", "--older-than", "365d"]) == 0
    assert store.counts()["cards"] == 1
    assert store_cli(["purge", "--older-than", "30d"]) == 0
    assert store.counts() == {"cards": 0, "feedback": 0, "jwt_ids": 0}
    assert "deleted 1 cards, 1 feedback items" in capsys.readouterr().out


@pytest.mark.parametrize("text, expected", [
    ("365d", timedelta(days=365)), ("52w", timedelta(weeks=52)), ("48h", timedelta(hours=48))])
def test_durations(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "365", "d", "-1d", "1y", "1.5d"])
def test_bad_durations_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)
