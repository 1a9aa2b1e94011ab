"""What the store adds to one hook call: `Store.record_cards` with the cards of a typical
answer (2 cards, 1 suggestion each), timed on SQLite (default file store) and PostgreSQL.
Also times `claim_jti` (every authenticated call) and `record_feedback` (one item).

    .venv/bin/python bench/store_overhead.py [--calls 2000] [--postgres URL]

URL is a maintenance database (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres);
a temporary database is created there and dropped afterwards. PostgreSQL is skipped, with
a note, when unreachable.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.config import validate_config  # noqa: E402
from service.store import FeedbackItem, open_store  # noqa: E402
from tests.store import helpers  # noqa: E402

WARM_UP = 200


def typical_cards() -> list[dict]:
    return [helpers.make_card("renal-dose", "critical"), helpers.make_card("titration", "warning")]


def timed(operation, calls: int) -> tuple[float, float]:
    """p50 and p99 in milliseconds, after a warm-up."""
    for _ in range(WARM_UP):
        operation()
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        operation()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def bench_store(label: str, url: str, calls: int) -> None:
    with tempfile.TemporaryDirectory() as instance:
        store = open_store(validate_config({"server": {"instance_path": instance}, "store": {"url": url}}))
        expiry = datetime.now(timezone.utc) + timedelta(minutes=5)
        operations = {
            "record_cards (2 cards)": lambda: store.record_cards(
                "baclofen-order-sign", "order-sign", str(uuid.uuid4()), "patient-1", typical_cards()),
            "claim_jti": lambda: store.claim_jti(str(uuid.uuid4()), expiry),
            "record_feedback (1 item)": lambda: store.record_feedback("baclofen-order-sign", [FeedbackItem(
                card=str(uuid.uuid4()), outcome="accepted", outcome_at=datetime.now(timezone.utc))]),
        }
        for name, operation in operations.items():
            p50, p99 = timed(operation, calls)
            print(f"| {label} | {name} | {p50:.3f} | {p99:.3f} |")
        store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--postgres", default=helpers.POSTGRES_ADMIN_URL)
    args = parser.parse_args()
    helpers.POSTGRES_ADMIN_URL = args.postgres
    print("| database | operation | p50 ms | p99 ms |\n|---|---|---|---|")
    bench_store("SQLite (WAL)", "", args.calls)
    reason = helpers.postgres_unreachable_reason()
    if reason:
        print(f"PostgreSQL skipped: {reason}")
        return 0
    url = helpers.create_postgres_database()
    try:
        bench_store("PostgreSQL 15", url, args.calls)
    finally:
        helpers.drop_postgres_database(url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
