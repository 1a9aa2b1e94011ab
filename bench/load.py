"""Load benchmark of the served app: the real `baclofen-cds serve` (2 workers; serve's default
gevent workers, or --threads N for gunicorn's thread workers, 1: sync).

Scenarios, each a realistic order-sign request built from a fixture story:
  prefetch  complete prefetch: the EHR sent everything, no FHIR traffic;
  fetch     no prefetch: the service reads 7 queries from a local FHIR server (a second
            gunicorn process serving the bundled fixtures).
For each: throughput and latency with wrk (16 connections), latency at one connection
(close to the server-side time: loopback adds ~0.1 ms), the service's own timer from its
Prometheus histogram, and each worker's RSS after warm-up and after 10,000 and 20,000 more
requests (memory must stay flat).

    .venv/bin/python bench/load.py            # needs wrk: apt-get install wrk
    .venv/bin/python bench/load.py --seconds 5 --scenario prefetch
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fhir_fixtures import load_story  # noqa: E402
from fhir_fixtures.requests import hook_request  # noqa: E402

STORY = "renal-reduce-creatinine-umol"  # a warning with a one-click dose change: a typical card
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "r"); wrk.body = f:read("*a"); f:close()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or the worker still booting
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def start(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def start_service(workdir: Path, threads: int | None, fhir_base: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(workdir / "instance")}
    if fhir_base:
        env["BACLOFEN_CDS_FHIR__ALLOWED_SERVERS"] = json.dumps([fhir_base])
        env["BACLOFEN_CDS_RUNAHEAD__ENABLED"] = "false"  # measure fetches, not the cache
    server = ["--threads", str(threads)] if threads else []
    process = start([sys.executable, "-m", "service.cli", "serve", "--port", str(port),
                     "--workers", "2", *server], env)
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/healthz")
    return process, base


def start_fhir_server() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = start([sys.executable, "-m", "gunicorn", "--workers", "1", "--threads", "8",
                     "-b", f"127.0.0.1:{port}", "bench.fixture_fhir:app"], dict(os.environ))
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/metadata")
    return process, base


def worker_rss_kib(master: subprocess.Popen) -> list[int]:
    children = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True).stdout.split()
    sizes = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)))
    return sorted(sizes)


def wrk(url: str, body_file: Path, seconds: int, connections: int) -> dict:
    script = body_file.with_suffix(".lua")
    script.write_text(LUA.format(body=body_file))
    out = subprocess.run(["wrk", "-t", "2" if connections > 1 else "1", "-c", str(connections),
                          "-d", f"{seconds}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    return {
        "requests": int(re.search(r"(\d+) requests in", out).group(1)),
        "req_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0,
        "socket_errors": sum(map(int, m.groups())) if (m := re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)) else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def server_side_latency(base: str) -> dict:
    """p50/p99 of the service's own request timer, read from its Prometheus histogram
    (all requests of the run, both workers), interpolated within buckets."""
    text = requests.get(f"{base}/metrics", timeout=10).text
    pattern = r'cds_hook_duration_seconds_bucket\{le="([^"]+)",service="baclofen-order-sign"\} ([\d.e+]+)'
    buckets = [(float(le), float(count)) for le, count in re.findall(pattern, text)]
    total = buckets[-1][1]
    return {f"p{q}_ms": round(_quantile(buckets, total * q / 100) * 1000, 2) for q in (50, 99)}


def _quantile(buckets: list[tuple[float, float]], rank: float) -> float:
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1)
        lower_bound, lower_count = bound, count
    return lower_bound


def request_body(scenario: str, fhir_base: str | None) -> dict:
    from service.declarations import prefetch_templates
    from cards.knowledge import load_knowledge

    story = load_story(STORY)
    if scenario == "prefetch":
        return hook_request(story, "order-sign", prefetch="complete",
                            prefetch_templates=prefetch_templates(load_knowledge()))
    return hook_request(story, "order-sign", prefetch="none", fhir_server=fhir_base)


def requests_until(base: str, body_file: Path, count: int) -> None:
    """Drive about `count` more requests through the service (wrk, 16 connections)."""
    done = 0
    while done < count:
        done += wrk(f"{base}/cds-services/baclofen-order-sign", body_file, 2, 16)["requests"]


def run_scenario(scenario: str, seconds: int, workdir: Path, threads: int | None) -> dict:
    fhir, fhir_base = None, None
    if scenario == "fetch":
        fhir, fhir_base = start_fhir_server()
    service, base = start_service(workdir, threads, fhir_base)
    try:
        body = request_body(scenario, fhir_base if fhir else None)
        body_file = workdir / f"{scenario}.json"
        body_file.write_text(json.dumps(body))
        check = requests.post(f"{base}/cds-services/baclofen-order-sign", json=body, timeout=10)
        check.raise_for_status()
        topics = [card["source"]["topic"]["code"] for card in check.json()["cards"]]
        url = f"{base}/cds-services/baclofen-order-sign"
        requests_until(base, body_file, 2000)  # warm-up
        rss_before = worker_rss_kib(service)
        loaded = wrk(url, body_file, seconds, 16)
        single = wrk(url, body_file, seconds, 1)
        requests_until(base, body_file, 10_000 - loaded["requests"] - single["requests"])
        rss_after = worker_rss_kib(service)
        requests_until(base, body_file, 10_000)
        rss_after_20k = worker_rss_kib(service)
        return {"scenario": scenario, "threads_per_worker": threads or "gevent", "cards": topics,
                "server_side": server_side_latency(base), "request_bytes": body_file.stat().st_size,
                "loaded_16_connections": loaded, "single_connection": single,
                "worker_rss_kib_before": rss_before, "worker_rss_kib_after_10k": rss_after,
                "worker_rss_kib_after_20k": rss_after_20k}
    finally:
        for process in (service, fhir):
            if process:
                os.killpg(process.pid, 15)
                process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--scenario", choices=("prefetch", "fetch", "all"), default="all")
    parser.add_argument("--threads", type=int, default=None,
                        help="gunicorn thread workers with this many threads (serve --threads); "
                             "default: serve's gevent workers")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    scenarios = ("prefetch", "fetch") if args.scenario == "all" else (args.scenario,)
    with tempfile.TemporaryDirectory() as workdir:
        results = [run_scenario(s, args.seconds, Path(workdir), args.threads) for s in scenarios]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
