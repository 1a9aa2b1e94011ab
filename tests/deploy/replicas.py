"""`baclofen-cds serve` instances as real processes, each in its own process group so a
test can stop one gracefully (SIGTERM to the master) or crash it (SIGKILL to the whole
group, as a container or node dies); and the requests a load test sends.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from fhir_fixtures import load_story
from fhir_fixtures.fhir_server import create_fhir_app
from fhir_fixtures.fhir_server import story_resources
from fhir_fixtures.requests import hook_request
from tests.fhir_server_helpers import REPO_ROOT, free_port

ORDER_SIGN = "baclofen-order-sign"
RENAL_STORY = "renal-avoid"


class Replica:
    def __init__(self, name: str, folder: Path, env: dict, *, port: int | None = None,
                 arguments: tuple[str, ...] = ("--workers", "2")):
        self.name = name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"{name}.log"
        self._env = env
        self._arguments = arguments
        self.process: subprocess.Popen | None = None

    def start(self, ready_within: float = 30.0) -> "Replica":
        command = [sys.executable, "-m", "service.cli", "serve", *self._arguments,
                   "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=self._env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready(ready_within)
        return self

    def wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.name} not ready in {seconds} s: {self.log.read_text()[-2000:]}")

    def terminate(self, within: float = 30.0) -> int:
        """SIGTERM to the master (a graceful stop); its exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=within)

    def crash(self) -> None:
        """SIGKILL to every process of this replica at once."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.crash()


def replica_env(folder: Path, store_url: str = "", *, fhir_server: str = "", **extra: str) -> dict:
    """The environment of a replica; `fhir_server` is the one FHIR server it may query
    (with none allowed, a call naming a FHIR server is refused with 412)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT),
           "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(folder / "instance"), **extra}
    if store_url:
        env["BACLOFEN_CDS_STORE__URL"] = store_url
    if fhir_server:
        env["BACLOFEN_CDS_FHIR__ALLOWED_SERVERS"] = json.dumps([fhir_server])
    return env


def renal_fhir_app():
    """The fixture FHIR server with the CKD stage 4 patient (eGFR 24)."""
    return create_fhir_app(story_resources(load_story(RENAL_STORY)))


def renal_order_sign(fhir_server: str) -> dict:
    """An order-sign call the service answers from `fhir_server` (no prefetch)."""
    return hook_request(load_story(RENAL_STORY), "order-sign", prefetch="none", fhir_server=fhir_server)


def renal_avoid_card(cards: list[dict]) -> dict | None:
    return next((card for card in cards if card["source"]["topic"]["code"] == "renal-avoid"), None)
