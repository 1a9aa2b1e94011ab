"""Which server should `serve` use? Each candidate runs the real service (2 workers) and is
measured in the same run as the reference: a trivial Flask endpoint (bench/trivial_app.py)
on gunicorn with 2 sync workers. All figures come from wrk on this machine; rounds are
interleaved so every candidate sees the same background load.

Scenarios (each reported as req/s, p50, p99, non-2xx and socket errors):
  prefetch   16 connections, the 5.3 KB order-sign request with complete prefetch;
  fetch      16 connections of calls that must fetch their 7 queries from a FHIR server
             answering each query after 200 ms, while 4 more connections send
             complete-prefetch calls (their p99 is the availability figure);
  slowloris  64 connections trickling their headers or body (one byte a second) while 4
             connections send complete-prefetch calls.

    .venv/bin/python bench/servers.py [--seconds 8] [--rounds 2] [--candidates a,b] [--scenarios ...]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import free_port, request_body, start, wait_up, wrk  # noqa: E402
from tests.core.test_slow_clients import nginx_in_front, trickle  # noqa: E402

HOOK = "/cds-services/baclofen-order-sign"
PY = sys.executable


def candidates(port: int) -> dict[str, list[str]]:
    bind = ["--host", "127.0.0.1", "--port", str(port)]
    granian = [PY, "-m", "granian", "--interface", "wsgi", "--workers", "2", "--host", "127.0.0.1",
               "--port", str(port), "--no-ws", "--log-level", "warning"]
    return {
        "trivial-gunicorn-sync": [PY, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                                  "bench.trivial_app:app"],
        "serve": [PY, "-m", "service.cli", "serve", *bind],
        "gunicorn-sync": [PY, "-m", "service.cli", "serve", "--server", "gunicorn", "--threads", "1", *bind],
        "gunicorn-gthread-16": [PY, "-m", "service.cli", "serve", "--threads", "16", *bind],
        "granian-1": [*granian, "--blocking-threads", "1", "service.wsgi:app"],
        "granian-4": [*granian, "--blocking-threads", "4", "service.wsgi:app"],
        "granian-16": [*granian, "--blocking-threads", "16", "service.wsgi:app"],
    }


def run_candidate(name: str, scenarios: list[str], seconds: int, workdir: Path, fhir_url: str) -> dict:
    """`nginx+<candidate>`: the candidate behind nginx with deploy/nginx/baclofen-cds.conf."""
    behind_nginx = name.startswith("nginx+")
    server = name.removeprefix("nginx+")
    port = free_port()
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(workdir / f"instance-{name}"),
           # The slow FHIR server is allowed (nothing is by default), and every fetching call
           # really fetches: run-ahead would answer the repeated patient from memory.
           "BACLOFEN_CDS_FHIR__ALLOWED_SERVERS": json.dumps([fhir_url]),
           "BACLOFEN_CDS_RUNAHEAD__ENABLED": "false"}
    process = start(candidates(port)[server], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/healthz", seconds=60)
        with contextlib.ExitStack() as stack:
            if behind_nginx:
                folder = Path(tempfile.mkdtemp(dir=workdir))
                base = stack.enter_context(nginx_in_front(f"127.0.0.1:{port}", folder))
            result = {}
            for scenario in scenarios:
                if name.startswith("trivial") and scenario != "prefetch":
                    continue
                result[scenario] = SCENARIOS[scenario](base, workdir, seconds, fhir_url)
            return result
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def body_file(workdir: Path, scenario: str, fhir_url: str | None) -> Path:
    path = workdir / f"{scenario}.json"
    if not path.exists():
        path.write_text(json.dumps(request_body(scenario, fhir_url)))
    return path


def prefetch(base: str, workdir: Path, seconds: int, _fhir_url: str) -> dict:
    body = body_file(workdir, "prefetch", None)
    wrk(base + HOOK, body, 2, 16)  # warm-up
    return wrk(base + HOOK, body, seconds, 16)


def fetch(base: str, workdir: Path, seconds: int, fhir_url: str) -> dict:
    fetch_body = body_file(workdir, "fetch", fhir_url)
    wrk(base + HOOK, fetch_body, 2, 16)  # warm-up
    side = {}
    thread = threading.Thread(target=lambda: side.update(
        wrk(base + HOOK, body_file(workdir, "prefetch", None), seconds, 4)))
    thread.start()
    fetching = wrk(base + HOOK, fetch_body, seconds, 16)
    thread.join()
    return {"fetching_16": fetching, "prefetch_4_meanwhile": side}


def slowloris(base: str, workdir: Path, seconds: int, _fhir_url: str) -> dict:
    stop = threading.Event()
    slow = [threading.Thread(target=trickle, args=(base, index % 2 == 0, stop), daemon=True)
            for index in range(64)]
    for thread in slow:
        thread.start()
    time.sleep(2)  # let them all connect and start trickling
    try:
        return wrk(base + HOOK, body_file(workdir, "prefetch", None), seconds, 4)
    finally:
        stop.set()


class _Url:
    def __init__(self, url: str):
        self.url = url


def _slow_fhir_server(kind, serve_wsgi, create_fhir_app, InMemoryFhir, all_stories):
    """The FHIR server of the fetch scenario, every answer after 200 ms."""
    if kind == "threads":
        return serve_wsgi(create_fhir_app(InMemoryFhir.from_stories(all_stories())), latency=0.2), None
    port = free_port()
    process = start([PY, "-m", "gunicorn", "-k", "gevent", "-w", "2", "--worker-connections", "1000",
                     "-b", f"127.0.0.1:{port}", "bench.slow_fixture_fhir:app"], dict(os.environ))
    wait_up(f"http://127.0.0.1:{port}/metadata", 60)
    return _Url(f"http://127.0.0.1:{port}"), process


SCENARIOS = {"prefetch": prefetch, "fetch": fetch, "slowloris": slowloris}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--candidates", default="trivial-gunicorn-sync,serve,nginx+serve",
                        help=f"any of {', '.join(candidates(0))}, each also as nginx+<name>")
    parser.add_argument("--scenarios", default="prefetch,fetch,slowloris")
    parser.add_argument("--fhir", choices=("gevent", "threads"), default="gevent",
                        help="the 200 ms FHIR server: gunicorn gevent (cheap, the default) or a "
                             "threaded server inside this process")
    args = parser.parse_args()
    from service.app import create_app  # noqa: F401 - fail early on a broken checkout
    from tests.fhir_server_helpers import serve_wsgi
    from fhir_fixtures import all_stories
    from fhir_fixtures.fhir_server import InMemoryFhir, create_fhir_app

    fhir, fhir_process = _slow_fhir_server(args.fhir, serve_wsgi, create_fhir_app, InMemoryFhir, all_stories)
    results: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for round_ in range(args.rounds):
            for name in args.candidates.split(","):
                try:
                    outcome = run_candidate(name, args.scenarios.split(","), args.seconds,
                                            Path(workdir), fhir.url)
                except RuntimeError as error:  # did not start: say so, measure the others
                    outcome = {"error": str(error)}
                results.setdefault(name, []).append(outcome)
                print(json.dumps({"round": round_, name: outcome}), flush=True)
    if fhir_process:
        os.killpg(fhir_process.pid, 15)
    else:
        fhir.close()
    trivial = [r["prefetch"]["req_per_s"] for r in results.get("trivial-gunicorn-sync", [])]
    if trivial:
        for name, runs in results.items():
            ratios = [run["prefetch"]["req_per_s"] / ref for run, ref in zip(runs, trivial)
                      if "prefetch" in run]
            print(f"{name}: prefetch req/s vs trivial endpoint, per round: "
                  + ", ".join(f"{ratio:.2f}x" for ratio in ratios))
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
