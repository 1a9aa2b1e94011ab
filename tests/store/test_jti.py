"""Store.claim_jti: the JWT replay cache, atomic across processes."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta, timezone

from service.store import open_store


def _soon(seconds: int = 300) -> datetime:
    return datetime.now(timezone.utc) + timedelta(seconds=seconds)


def test_first_claim_wins_and_a_replay_is_refused(store):
    assert store.claim_jti("jti-1", _soon()) is True
    assert store.claim_jti("jti-1", _soon()) is False
    assert store.claim_jti("jti-2", _soon()) is True


def test_an_expired_claim_can_be_claimed_again(store):
    assert store.claim_jti("jti-old", _soon(-10)) is True
    assert store.claim_jti("jti-old", _soon()) is True
    assert store.claim_jti("jti-old", _soon()) is False


def test_naive_and_aware_expiry_times_agree(store):
    naive_utc = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(minutes=5)
    assert store.claim_jti("jti-naive", naive_utc) is True
    assert store.claim_jti("jti-naive", _soon()) is False


def test_a_claim_holds_across_store_instances(config, store):
    other = open_store(config)
    try:
        assert store.claim_jti("jti-shared", _soon()) is True
        assert other.claim_jti("jti-shared", _soon()) is False
    finally:
        other.close()


def _claim_all(config, jtis: list[str]) -> int:
    store = open_store(config)
    try:
        return sum(store.claim_jti(jti, _soon()) for jti in jtis)
    finally:
        store.close()


def test_concurrent_processes_claim_each_jti_exactly_once(config, store):
    jtis = [f"race-{i}" for i in range(200)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=6, mp_context=context) as pool:
        wins = list(pool.map(_claim_all, [config] * 6, [jtis] * 6))
    assert sum(wins) == len(jtis)
