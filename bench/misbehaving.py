"""A misbehaving FHIR server against the real `baclofen-cds serve` (its defaults):
for each misbehaviour of tests/misbehaving_fhir.py (gzip bomb, endless body, trickled body
or headers, a 100,000-entry Bundle, JSON 1,000 and 150 levels deep), 8 hook calls at once
whose Patient read misbehaves. Reported per misbehaviour: the slowest call against the
budget ([fhir] total_timeout + 0.5 s), the reason on the data-unavailable card, the
largest worker RSS seen meanwhile (sampled every 20 ms), and whether the next call to a
healthy server got its full cards.

    .venv/bin/python bench/misbehaving.py [--calls 8]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import free_port, start, wait_up, worker_rss_kib  # noqa: E402
from tests.core.builders import complete_prefetch, hook_request  # noqa: E402
from tests.misbehaving_fhir import MisbehavingFhir  # noqa: E402

HOOK = "/cds-services/baclofen-order-sign"
MODES = ["gzip_bomb", "endless", "trickle", "trickle_headers", "many_entries", "deep_1000", "deep_150"]
BUDGET_SECONDS = 2.5 + 0.5  # the default [fhir] total_timeout, plus the allowance


def one_call(base: str, fhir_url: str) -> tuple[float, dict]:
    body = hook_request(prefetch=complete_prefetch(patient="omit"), fhir_server=fhir_url)
    started = time.perf_counter()
    response = requests.post(base + HOOK, json=body, timeout=60)
    return time.perf_counter() - started, {"status": response.status_code, **_unavailable(response)}


def _unavailable(response) -> dict:
    cards = response.json().get("cards", []) if response.status_code == 200 else []
    card = next((c for c in cards if c["source"]["topic"]["code"] == "data-unavailable"), None)
    return {"reason": card["detail"].split("):", 1)[1].split("\n")[0].strip() if card else None,
            "topics": sorted(c["source"]["topic"]["code"] for c in cards)}


class RssSampler:
    def __init__(self, master):
        self.master, self.peak_kib, self._stop = master, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak_kib = max([self.peak_kib, *worker_rss_kib(self.master)])
            except (OSError, AttributeError):  # a worker just exited
                pass

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir, contextlib.ExitStack() as stack:
        # Every FHIR server listens before serve starts: serve calls only the allowed ones.
        healthy = stack.enter_context(MisbehavingFhir("healthy"))
        misbehaving = {mode: stack.enter_context(MisbehavingFhir(mode)) for mode in MODES}
        allowed = [healthy.url] + [server.url for server in misbehaving.values()]
        port = free_port()
        env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(Path(workdir) / "instance"),
               "BACLOFEN_CDS_FHIR__ALLOWED_SERVERS": json.dumps(allowed)}
        service = start([sys.executable, "-m", "service.cli", "serve", "--port", str(port)], env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_up(f"{base}/healthz", 60)
            expected = one_call(base, healthy.url)[1]["topics"]
            print(json.dumps({"healthy_topics": expected, "worker_rss_mib_idle":
                              [round(k / 1024, 1) for k in worker_rss_kib(service)]}))
            for mode, bad in misbehaving.items():
                with RssSampler(service) as rss, ThreadPoolExecutor(args.calls) as pool:
                    results = list(pool.map(lambda _: one_call(base, bad.url), range(args.calls)))
                after = one_call(base, healthy.url)[1]
                print(json.dumps({
                    "mode": mode, "calls": args.calls,
                    "slowest_call_s": round(max(t for t, _ in results), 2),
                    "within_budget_plus_0_5_s": all(t <= BUDGET_SECONDS for t, _ in results),
                    "statuses": sorted({r["status"] for _, r in results}),
                    "reasons": sorted({str(r["reason"]) for _, r in results}),
                    "peak_worker_rss_mib": round(rss.peak_kib / 1024, 1),
                    "next_healthy_call_full_cards": bool(expected) and after["topics"] == expected,
                }), flush=True)
        finally:
            os.killpg(service.pid, 15)
            service.wait(timeout=30)


if __name__ == "__main__":
    main()
