"""How long the SQLite store stalls a gevent worker (`serve`'s default) while it records
cards: what the calls of the worker wait for, whatever the HTTP layer and the rules cost.

Two processes patched by gevent, as two workers, share one store. In each, greenlets record
the cards of `--rate` calls a second (two cards and a baclofen order, as the order-sign
story, plus the read of earlier overrides) while another greenlet asks to wake every 5 ms;
how late it wakes is how long the worker's loop was held. Two settings, same run,
interleaved:

  before  cards written every 0.1 s; SQLite checkpoints its log in the connection that
          commits past 1,000 pages (the worker's loop)
  now     cards written every 0.02 s ([store] record_batch_seconds); the log checkpointed
          by a native thread of each process (service/store/wal_checkpoint.py)

    .venv/bin/python bench/store_stalls.py [--seconds 10] [--rate 1000] [--rounds 2]
"""
from __future__ import annotations

import sys

if __name__ == "__main__" and "--child" in sys.argv:
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timedelta, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICK_SECONDS = 0.005
SETTINGS = {"before": {"batch_seconds": 0.1, "checkpoint": "in-loop"},
            "now": {"batch_seconds": 0.02, "checkpoint": "thread"}}
WORKERS = 2


def card(topic: str, number: int) -> dict:
    return {"uuid": f"{topic}-{number}-{os.getpid()}", "indicator": "warning",
            "summary": f"Baclofen {number} mg: renal function", "suggestions": [{"uuid": f"s-{number}"}],
            "source": {"label": "Baclofen CDS", "topic": {"system": "https://baclofen-cds.example/topic",
                                                          "code": topic}}}


def child(instance: str, setting: str, seconds: float, rate: float) -> None:
    import gevent
    from sqlalchemy import event

    from service.config import validate_config
    from service.store import open_store

    chosen = SETTINGS[setting]
    store = open_store(validate_config({"server": {"instance_path": instance},
                                        "store": {"record_batch_seconds": chosen["batch_seconds"]}}))
    if chosen["checkpoint"] == "in-loop":  # as the store was: no thread, SQLite's default
        store._checkpointer.stop()

        @event.listens_for(store.engine, "connect")
        def _default_checkpoint(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=1000")

        store.engine.dispose()
    lateness: list[float] = []
    deadline = time.monotonic() + seconds

    def tick() -> None:
        while time.monotonic() < deadline:
            asked = time.monotonic()
            gevent.sleep(TICK_SECONDS)
            lateness.append(time.monotonic() - asked - TICK_SECONDS)

    def record() -> None:
        number, started = 0, time.monotonic()
        since = datetime.now(timezone.utc) - timedelta(days=30)
        while time.monotonic() < deadline:
            number += 1
            store.overrides_for(f"patient-{number % 50}", since)
            store.record_cards_later("baclofen-order-sign", "order-sign", f"h-{number}", f"patient-{number % 50}",
                                     [card("renal-reduce", number), card("elderly-start", number)],
                                     draft_keys=(f"d-{number}",), fingerprints=["f1", "f2"], orders=(f"d-{number}",))
            gevent.sleep(max(0.0, started + number / rate - time.monotonic()))

    gevent.joinall([gevent.spawn(tick), gevent.spawn(record)])
    store.close()
    print(json.dumps(lateness))


def run_setting(setting: str, seconds: float, rate: float) -> dict:
    with tempfile.TemporaryDirectory() as instance:
        from service.config import validate_config
        from service.store import open_store

        open_store(validate_config({"server": {"instance_path": instance}})).close()  # the schema
        children = [subprocess.Popen([sys.executable, __file__, "--child", "--setting", setting, "--instance",
                                      instance, "--seconds", str(seconds), "--rate", str(rate)],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
                    for _ in range(WORKERS)]
        lateness = sorted(value for process in children
                          for value in json.loads(process.communicate()[0].splitlines()[-1]))
    return {"setting": setting, "ticks": len(lateness),
            "late_p50_ms": round(1000 * statistics.median(lateness), 2),
            "late_p99_ms": round(1000 * lateness[int(0.99 * (len(lateness) - 1))], 2),
            "late_max_ms": round(1000 * lateness[-1], 2),
            "late_over_5ms": sum(1 for value in lateness if value > 0.005)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=1000, help="calls a second in each worker")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setting", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--instance", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.instance, args.setting, args.seconds, args.rate)
        return
    for round_number in range(args.rounds):
        for setting in SETTINGS:
            print(json.dumps({"round": round_number, **run_setting(setting, args.seconds, args.rate)}), flush=True)


if __name__ == "__main__":
    main()
