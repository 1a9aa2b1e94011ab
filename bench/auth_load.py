"""The complete-prefetch order-sign call with ES384 client authentication on, next to the
same call with authentication off and the trivial endpoint, in one run (wrk, 1 thread,
16 connections: every request carries its own pre-signed JWT, as a replayed jti is refused).

    .venv/bin/python bench/auth_load.py [--seconds 8]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import _ms, free_port, request_body, start, wait_up  # noqa: E402

HOOK = "/cds-services/baclofen-order-sign"
ISSUER = "https://ehr.bench.example"
LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("{body}", "r"); wrk.body = f:read("*a"); f:close()
local tokens = {{}}
for line in io.lines("{tokens}") do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  local headers = {{["Content-Type"] = "application/json"}}
  if #tokens > 0 then headers["Authorization"] = "Bearer " .. tokens[i] end
  return wrk.format(nil, nil, headers, wrk.body)
end
"""


def run_wrk(url: str, body: Path, tokens: Path, seconds: int) -> dict:
    script = body.with_suffix(f".{tokens.stem}.lua")
    script.write_text(LUA.format(body=body, tokens=tokens))
    out = subprocess.run(["wrk", "-t", "1", "-c", "16", "-d", f"{seconds}s", "--latency", "-s",
                          str(script), url], capture_output=True, text=True, check=True).stdout
    return {"req_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
            "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
            "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0}


def signed_tokens(key, kid: str, audience: str, count: int, path: Path) -> Path:
    now = int(time.time())
    with path.open("w") as handle:
        for _ in range(count):
            claims = {"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 600, "jti": str(uuid.uuid4())}
            handle.write(jwt.encode(claims, key, algorithm="ES384", headers={"kid": kid, "typ": "JWT"}) + "\n")
    return path


def serve(workdir: Path, name: str, config: Path | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(workdir / f"instance-{name}"),
           "BACLOFEN_CDS_SERVER__PUBLIC_URL": f"http://127.0.0.1:{port}"}
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    process = start(command + (["--config", str(config)] if config else []), env)
    base = f"http://127.0.0.1:{port}"
    wait_up(f"{base}/healthz", 60)
    return process, base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=12_000, help="more than the run will send")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        workdir = Path(folder)
        body = workdir / "prefetch.json"
        body.write_text(json.dumps(request_body("prefetch", None)))
        no_tokens = workdir / "none.txt"
        no_tokens.write_text("")
        key, kid = ec.generate_private_key(ec.SECP384R1()), "bench-es384"
        jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": "ES384"}
        (workdir / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
        config = workdir / "auth.toml"
        config.write_text(f'[[auth.issuers]]\niss = "{ISSUER}"\njwks_file = "jwks.json"\n')
        results = {}
        trivial_port = free_port()
        trivial = start([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{trivial_port}",
                         "bench.trivial_app:app"], dict(os.environ))
        try:
            wait_up(f"http://127.0.0.1:{trivial_port}/healthz", 60)
            run_wrk(f"http://127.0.0.1:{trivial_port}{HOOK}", body, no_tokens, 2)
            results["trivial"] = run_wrk(f"http://127.0.0.1:{trivial_port}{HOOK}", body, no_tokens, args.seconds)
        finally:
            os.killpg(trivial.pid, 15)
        for name, auth in (("auth_off", False), ("es384", True)):
            process, base = serve(workdir, name, config if auth else None)
            try:
                tokens = no_tokens
                if auth:
                    tokens = signed_tokens(key, kid, base + HOOK, args.tokens, workdir / "es384.txt")
                    warm = signed_tokens(key, kid, base + HOOK, 3000, workdir / "warm.txt")
                    run_wrk(base + HOOK, body, warm, 2)
                else:
                    run_wrk(base + HOOK, body, tokens, 2)
                results[name] = run_wrk(base + HOOK, body, tokens, args.seconds)
            finally:
                os.killpg(process.pid, 15)
                process.wait(timeout=30)
        for name in ("auth_off", "es384"):
            results[name]["vs_trivial"] = round(results[name]["req_per_s"] / results["trivial"]["req_per_s"], 2)
        results["load_average"] = os.getloadavg()
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
