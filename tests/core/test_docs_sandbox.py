"""docs/demo.md gets a newcomer from the CDS Hooks Sandbox to cards: its URLs open the
Rx Sign tab on the order-sign hook, point at one server, and work on any port; and
docs/sandbox.toml lets a locally run Sandbox through CORS."""
from __future__ import annotations

import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from service import create_app
from service.config import load_config
from tests.conftest import REPO_ROOT
from tests.fhir_server_helpers import serve_cli

DEMO_DOC = (REPO_ROOT / "docs" / "demo.md").read_text()
SANDBOX_URLS = re.findall(r"^\s*(https?://(?:sandbox\.cds-hooks\.org|localhost:8080)/\?\S+)$", DEMO_DOC, re.M)
SCREEN_OF_HOOK = {"order-sign": "rx-sign", "order-select": "rx-view"}


def sandbox_parameters(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_the_doc_gives_the_hosted_and_the_local_sandbox_url():
    hosts = {urlsplit(url).netloc for url in SANDBOX_URLS}
    assert hosts == {"sandbox.cds-hooks.org", "localhost:8080"}


@pytest.mark.parametrize("url", SANDBOX_URLS)
def test_each_sandbox_url_opens_the_order_tab_of_one_server(url):
    parameters = sandbox_parameters(url)
    assert SCREEN_OF_HOOK[parameters["hook"]] == parameters["screen"]
    fhir, discovery = urlsplit(parameters["fhirServiceUrl"]), urlsplit(parameters["serviceDiscoveryURL"])
    assert fhir.netloc == discovery.netloc
    assert (fhir.path, discovery.path) == ("/demo/fhir", "/cds-services")
    if urlsplit(url).netloc == "localhost:8080":  # the local Sandbox owns 8080
        assert fhir.port != 8080


def test_the_doc_names_the_sandbox_tabs():
    assert "**Rx Sign**" in DEMO_DOC and "**Rx View**" in DEMO_DOC and "**Patient View**" in DEMO_DOC


def test_the_sandbox_url_works_on_a_port_other_than_8080(tmp_path):
    """What the Sandbox reads first, through the URL's parameters with the port replaced."""
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")}
    with serve_cli(["--demo", "--workers", "1"], tmp_path, env=env) as base:
        port = base.rsplit(":", 1)[1]
        parameters = sandbox_parameters(SANDBOX_URLS[0].replace("%3A8080", f"%3A{port}"))
        fhir = parameters["fhirServiceUrl"]
        metadata = requests.get(f"{fhir}/metadata", timeout=10).json()
        assert metadata["fhirVersion"].startswith("4.0")
        patient = requests.get(f"{fhir}/Patient/{parameters['patientId']}", timeout=10)
        assert patient.status_code == 200
        services = requests.get(parameters["serviceDiscoveryURL"], timeout=10).json()["services"]
        assert parameters["hook"] in {service["hook"] for service in services}


@pytest.mark.parametrize("origin,allowed", [
    ("https://sandbox.cds-hooks.org", True),
    ("http://localhost:8080", True),
    ("http://127.0.0.1:8080", True),
    ("https://evil.example", False),
])
def test_sandbox_toml_lets_the_hosted_and_a_local_sandbox_through_cors(tmp_path, origin, allowed):
    config = load_config(REPO_ROOT / "docs" / "sandbox.toml", environ={
        "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")})
    client = create_app(config).test_client()
    response = client.options("/cds-services/baclofen-order-sign", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert (response.headers.get("Access-Control-Allow-Origin") == origin) is allowed
