"""Two `baclofen-cds serve` replicas on loopback ports behind nginx (the proxy settings of
deploy/nginx/cds-replicas.conf), sharing one PostgreSQL database, with client
authentication on as in production; and a load generator that checks every answer.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine, select

from service.store.schema import cards as cards_table

from tests.deploy.replicas import ORDER_SIGN, Replica, renal_avoid_card, renal_order_sign, replica_env
from tests.fhir_server_helpers import REPO_ROOT, free_port, wait_until

PROXY_SNIPPET = REPO_ROOT / "deploy" / "nginx" / "cds-replicas.conf"
ISSUER = "https://ehr.cluster-test.example"
KID = "cluster-test-es384"
ADMIN_TOKEN = "cluster-admin-" + uuid.uuid4().hex
HOOK_PATH = f"/cds-services/{ORDER_SIGN}"
FEEDBACK_PATH = f"{HOOK_PATH}/feedback"

NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log info;
{user}
events {{ worker_connections 512; }}
http {{
    access_log {folder}/nginx-access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream baclofen_cds_replicas {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        include {snippet};
    }}
}}
"""


def nginx_executable() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    assert found, "nginx is missing: .ci/run installs it (apt-get install nginx-light)"
    return found


class Nginx:
    def __init__(self, folder: Path, upstream_ports: list[int]):
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=2s;"
                            for port in upstream_ports)
        # As root nginx would hand its workers to `nobody`, who cannot write here.
        user = "user root;" if _is_root() else ""
        self.conf = folder / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(folder=folder, user=user, servers=servers,
                                               port=self.port, snippet=PROXY_SNIPPET))
        self.process: subprocess.Popen | None = None

    def start(self) -> "Nginx":
        command = [nginx_executable(), "-p", str(self.folder), "-c", str(self.conf), "-e",
                   str(self.folder / "nginx-error.log")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"nginx exited: {self.process.stderr.read().decode()}")
            try:
                requests.get(f"{self.url}/healthz", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _is_root() -> bool:
    return os.geteuid() == 0


@dataclass
class Cluster:
    folder: Path
    database_url: str
    fhir_url: str
    replicas: dict[str, Replica] = field(default_factory=dict)
    nginx: Nginx | None = None
    _key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP384R1()))

    @property
    def public_url(self) -> str:
        return self.nginx.url

    def start(self, names=("a", "b")) -> "Cluster":
        ports = {name: free_port() for name in names}
        self.nginx = Nginx(self.folder, list(ports.values()))
        config = self._write_config()
        for name, port in ports.items():
            env = replica_env(self.folder / name, "", BACLOFEN_CDS_CONFIG=str(config))
            (self.folder / name).mkdir(exist_ok=True)
            self.replicas[name] = Replica(name, self.folder, env, port=port)
        # Both at once: their start-up migrations meet on the advisory lock.
        threads = [threading.Thread(target=replica.start) for replica in self.replicas.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for replica in self.replicas.values():
            replica.wait_ready(30)
        self.nginx.start()
        return self

    def stop(self) -> None:
        if self.nginx:
            self.nginx.stop()
        for replica in self.replicas.values():
            replica.stop()

    def _write_config(self) -> Path:
        secrets = self.folder / "secrets"
        secrets.mkdir()
        for name, value in {"store-url": self.database_url, "hash-key": uuid.uuid4().hex * 2,
                            "admin-token": ADMIN_TOKEN}.items():
            (secrets / name).write_text(value + "\n")
        jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key())),
               "kid": KID, "alg": "ES384", "use": "sig"}
        (self.folder / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
        config = self.folder / "config.toml"
        config.write_text(
            # As in production: the URL the EHR calls, nginx as the one trusted proxy, and
            # the EHR's FHIR server as the only place its access token may go.
            f'[server]\npublic_url = "{self.public_url}"\ntrusted_proxies = ["127.0.0.1"]\n'
            '[store]\nurl_file = "secrets/store-url"\npatient_hash_key_file = "secrets/hash-key"\n'
            '[admin]\ntoken_file = "secrets/admin-token"\n'
            f'[[auth.issuers]]\niss = "{ISSUER}"\njwks_file = "jwks.json"\nfhir_servers = ["{self.fhir_url}"]\n')
        return config

    # -- calls -----------------------------------------------------------------------------
    def token(self, path: str = HOOK_PATH) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": self.public_url + path, "iat": now, "exp": now + 120,
                  "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self._key, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})

    def hook_call(self, base: str, token: str | None = None) -> requests.Response:
        return requests.post(f"{base}{HOOK_PATH}", json=renal_order_sign(self.fhir_url), timeout=30,
                             headers={"Authorization": f"Bearer {token or self.token()}"})

    def feedback(self, base: str, card_uuid: str) -> requests.Response:
        body = {"feedback": [{"card": card_uuid, "outcome": "overridden",
                              "outcomeTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}]}
        return requests.post(f"{base}{FEEDBACK_PATH}", json=body, timeout=30,
                             headers={"Authorization": f"Bearer {self.token(FEEDBACK_PATH)}"})

    def wait_until_recorded(self, card_uuid: str, seconds: float = 10.0) -> None:
        """Replicas record the cards they issue in background batches (every 0.02 s)."""
        engine = create_engine(self.database_url)
        try:
            wait_until(lambda: _is_recorded(engine, card_uuid), f"card {card_uuid} to be recorded", seconds)
        finally:
            engine.dispose()

    def report(self, base: str) -> dict:
        response = requests.get(f"{base}/admin/report", timeout=30,
                                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert response.status_code == 200, response.text
        return response.json()


def _is_recorded(engine, card_uuid: str) -> bool:
    with engine.connect() as connection:
        query = select(cards_table.c.card_uuid).where(cards_table.c.card_uuid == card_uuid)
        return connection.execute(query).first() is not None


@dataclass(frozen=True)
class Outcome:
    started: float
    status: int  # 0: no HTTP answer at all
    right: bool  # 200 with the critical renal-avoid card and nothing unavailable
    finished: float = 0.0


def checked_call(cluster: Cluster) -> Outcome:
    started = time.monotonic()
    try:
        response = cluster.hook_call(cluster.nginx.url)
    except requests.RequestException:
        return Outcome(started, 0, False, time.monotonic())
    right = response.status_code == 200 and is_right(response.json())
    return Outcome(started, response.status_code, right, time.monotonic())


def is_right(body: dict) -> bool:
    cards = body.get("cards") or []
    card = renal_avoid_card(cards)
    unavailable = any(c["source"]["topic"]["code"] == "data-unavailable" for c in cards)
    return card is not None and card["indicator"] == "critical" and not unavailable


class Load:
    """`concurrency` callers sending hook calls through nginx until stopped."""

    def __init__(self, cluster: Cluster, concurrency: int = 4):
        self.cluster = cluster
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="load")
        self._futures = [self._pool.submit(self._caller) for _ in range(concurrency)]

    def _caller(self) -> None:
        while not self._stop.is_set():
            outcome = checked_call(self.cluster)
            with self._lock:
                self.outcomes.append(outcome)

    def answered(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait_for(self, more: int, seconds: float = 60) -> None:
        target = self.answered() + more
        wait_until(lambda: self.answered() >= target, f"{more} more answered calls (load stalled?)", seconds)

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for future in self._futures:
            future.result(timeout=60)
        self._pool.shutdown()
        return list(self.outcomes)
