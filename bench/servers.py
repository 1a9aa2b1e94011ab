"""Which server should `serve` use? Each candidate runs the real service (2 workers; `serve`
itself with its default, 4 gevent workers, and `serve-2-workers` with 2) and is
measured in the same run as the reference: a trivial Flask endpoint (bench/trivial_app.py)
on gunicorn with 2 sync workers. All figures come from wrk on this machine; rounds are
interleaved so every candidate sees the same background load. Besides: the trivial endpoint
on serve's worker and on granian (what the HTTP layer costs), and the hook call without
Flask in front (`lean-*`, bench/lean_hook_app.py: what the Flask layer costs; prefetch only).

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
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import free_port, request_body, start, wait_up, wrk  # noqa: E402
from tests.core.test_slow_clients import nginx_in_front, trickle  # noqa: E402

HOOK = "/cds-services/baclofen-order-sign"
PY = sys.executable


def candidates(port: int) -> dict[str, list[str]]:
    """Every candidate serving the service runs through `serve` (same metrics, recycling and
    hooks), except `gunicorn-gevent`: gunicorn's own gevent worker, the reference for
    serve's fairness fix."""
    serve = [PY, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    two = [*serve, "--workers", "2"]
    return {
        "trivial-gunicorn-sync": [PY, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                                  "bench.trivial_app:app"],
        # the HTTP layer alone: the trivial endpoint on serve's worker, and on granian
        "trivial-gevent-fair": [PY, "-m", "gunicorn", "-k", "service.gevent_worker.FairGeventWorker",
                                "-w", "2", "-b", f"127.0.0.1:{port}", "bench.trivial_app:app"],
        "trivial-granian-1": [PY, "-m", "granian", "--interface", "wsgi", "--workers", "2",
                              "--blocking-threads", "1", "--host", "127.0.0.1", "--port", str(port),
                              "bench.trivial_app:app"],
        # an experiment: the hook call without Flask in front (bench/lean_hook_app.py)
        "lean-gevent-fair": [PY, "-m", "gunicorn", "-k", "service.gevent_worker.FairGeventWorker",
                             "-w", "2", "-b", f"127.0.0.1:{port}", "bench.lean_hook_app:app"],
        "lean-granian-1": [PY, "-m", "granian", "--interface", "wsgi", "--workers", "2",
                           "--blocking-threads", "1", "--host", "127.0.0.1", "--port", str(port),
                           "bench.lean_hook_app:app"],
        # serve's default: gunicorn, gevent workers fair between keep-alive connections
        "serve": serve,
        "serve-2-workers": two,
        "gunicorn-gevent": [PY, "-m", "gunicorn", "-k", "gevent", "-w", "2", "-b", f"127.0.0.1:{port}",
                            "service.wsgi:app"],
        # the same with serve's fair worker: the fix alone, without serve's other settings
        "gunicorn-gevent-fair": [PY, "-m", "gunicorn", "-k", "service.gevent_worker.FairGeventWorker",
                                 "-w", "2", "-b", f"127.0.0.1:{port}", "service.wsgi:app"],
        "gunicorn-sync": [*two, "--threads", "1"],
        "gunicorn-gthread-4": [*two, "--threads", "4"],
        "gunicorn-gthread-16": [*two, "--threads", "16"],
        "granian-1": [*two, "--server", "granian", "--threads", "1"],
        "granian-4": [*two, "--server", "granian", "--threads", "4"],
        "granian-16": [*two, "--server", "granian", "--threads", "16"],
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
    base = direct = f"http://127.0.0.1:{port}"
    try:
        wait_up(f"{base}/healthz", seconds=60)
        with contextlib.ExitStack() as stack:
            if behind_nginx:
                folder = Path(tempfile.mkdtemp(dir=workdir))
                base = stack.enter_context(nginx_in_front(f"127.0.0.1:{port}", folder))
            result = {}
            for scenario in scenarios:
                if name.startswith(("trivial", "lean")) and scenario != "prefetch":
                    continue
                result[scenario] = SCENARIOS[scenario](base, workdir, seconds, fhir_url, process.pid)
            if "fetch" in result:
                result["fetch"]["fhir_query_errors"] = fhir_query_errors(direct)
            return result
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def fhir_query_errors(base: str) -> int:
    """FHIR queries that failed in this run (a timed-out fetch still answers 200, with a
    could-not-check card: wrk would count it a success)."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    return int(sum(float(count) for count in re.findall(r"^cds_fhir_fetch_errors_total\{[^}]*\} (\S+)",
                                                        text, re.MULTILINE)))


def body_file(workdir: Path, scenario: str, fhir_url: str | None) -> Path:
    path = workdir / f"{scenario}.json"
    if not path.exists():
        path.write_text(json.dumps(request_body(scenario, fhir_url)))
    return path


def cpu_seconds(group: int) -> float:
    """CPU time used so far by the live processes of a process group (the server's master
    and workers; wrk and this script are not in it)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[2]) == group:  # pgrp
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / os.sysconf("SC_CLK_TCK")


def prefetch(base: str, workdir: Path, seconds: int, _fhir_url: str, group: int) -> dict:
    """Also the server's CPU per call: it does not depend on what else loads the machine."""
    body = body_file(workdir, "prefetch", None)
    wrk(base + HOOK, body, 2, 16)  # warm-up
    before = cpu_seconds(group)
    result = wrk(base + HOOK, body, seconds, 16)
    result["server_cpu_ms_per_call"] = round((cpu_seconds(group) - before) * 1000 / result["requests"], 3)
    return result


def fetch(base: str, workdir: Path, seconds: int, fhir_url: str, _group: int) -> dict:
    fetch_body = body_file(workdir, "fetch", fhir_url)
    wrk(base + HOOK, fetch_body, 2, 16)  # warm-up
    side = {}
    thread = threading.Thread(target=lambda: side.update(
        wrk(base + HOOK, body_file(workdir, "prefetch", None), seconds, 4)))
    thread.start()
    fetching = wrk(base + HOOK, fetch_body, seconds, 16)
    thread.join()
    return {"fetching_16": fetching, "prefetch_4_meanwhile": side}


def slowloris(base: str, workdir: Path, seconds: int, _fhir_url: str, _group: int) -> dict:
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


def _slow_fhir_server():
    """The FHIR server of the fetch scenario, every answer after 200 ms (bench/slow_fixture_fhir.py)."""
    port = free_port()
    process = start([PY, "-m", "bench.slow_fixture_fhir", "--port", str(port)], dict(os.environ))
    url = f"http://127.0.0.1:{port}"
    wait_up(f"{url}/metadata", 60)
    return url, process


SCENARIOS = {"prefetch": prefetch, "fetch": fetch, "slowloris": slowloris}


def print_table(results: dict[str, list]) -> None:
    """One markdown row per candidate and round (a blank cell: scenario not run)."""
    trivial = [run.get("prefetch", {}).get("req_per_s") for run in results.get("trivial-gunicorn-sync", [])]
    print("| candidate | round | prefetch: vs trivial, req/s, p50/p99 ms, server CPU ms/call "
          "| fetch: req/s, p99 ms, FHIR query errors | prefetch during fetch: req/s, p99 ms "
          "| prefetch amid 64 slowloris: req/s, p99 ms, failed |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        for round_, run in enumerate(runs):
            cells = [name, str(round_)]
            if (p := run.get("prefetch")):
                reference = trivial[round_] if round_ < len(trivial) and trivial[round_] else None
                ratio = f"{p['req_per_s'] / reference:.2f}x" if reference else "-"
                cells.append(f"{ratio}, {p['req_per_s']:.0f}, {p['p50_ms']:.1f}/{p['p99_ms']:.1f}, "
                             f"{p['server_cpu_ms_per_call']}")
            else:
                cells.append(run.get("error", ""))
            if (f := run.get("fetch")):
                fetching, side = f["fetching_16"], f["prefetch_4_meanwhile"]
                cells.append(f"{fetching['req_per_s']:.1f}, {fetching['p99_ms']:.0f}, {f['fhir_query_errors']}")
                cells.append(f"{side['req_per_s']:.0f}, {side['p99_ms']:.1f}")
            else:
                cells += ["", ""]
            if (slow := run.get("slowloris")):
                failed = slow["non_2xx"] + slow["socket_errors"]
                cells.append(f"{slow['req_per_s']:.0f}, {slow['p99_ms']:.1f}, {failed}")
            else:
                cells.append("")
            print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--candidates", default="trivial-gunicorn-sync,serve,gunicorn-gevent,"
                        "gunicorn-gthread-16,granian-4,granian-16",
                        help=f"any of {', '.join(candidates(0))}, each also as nginx+<name>")
    parser.add_argument("--scenarios", default="prefetch,fetch,slowloris")
    args = parser.parse_args()
    from service.app import create_app  # noqa: F401 - fail early on a broken checkout

    fhir_url, fhir_process = _slow_fhir_server()
    results: dict[str, list] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for round_ in range(args.rounds):
            for name in args.candidates.split(","):
                try:
                    outcome = run_candidate(name, args.scenarios.split(","), args.seconds,
                                            Path(workdir), fhir_url)
                except RuntimeError as error:  # did not start: say so, measure the others
                    outcome = {"error": str(error)}
                results.setdefault(name, []).append(outcome)
                print(json.dumps({"round": round_, name: outcome}), flush=True)
    os.killpg(fhir_process.pid, 15)
    print_table(results)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
