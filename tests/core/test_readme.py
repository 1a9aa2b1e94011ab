"""The README is true: its configuration table is the real defaults, its walkthrough works."""
from __future__ import annotations

import json
import os
import re

import requests

from service.config import reference_markdown
from tests.conftest import REPO_ROOT
from tests.fhir_server_helpers import serve_cli

README = (REPO_ROOT / "README.md").read_text()


def test_readme_documents_every_configuration_default():
    table = re.search(r"<!-- config-reference:start -->\n(.*?)<!-- config-reference:end -->", README, re.S)
    assert table, "README lost its configuration reference"
    assert table.group(1).strip() == reference_markdown().strip()


def test_readme_starts_with_the_two_set_up_commands():
    commands = re.findall(r"```sh\n(.*?)\n```", README, re.S)[:2]
    assert commands[0].endswith("baclofen-cds serve --demo")
    assert commands[1] == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest"
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert commands[1] in ci


def test_readme_curl_walkthrough_shows_a_critical_renal_card(tmp_path):
    example = json.loads((REPO_ROOT / "fhir_fixtures/examples/order-sign-renal-avoid.json").read_text())
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")}
    with serve_cli(["--demo"], tmp_path, env=env) as base:
        example["fhirServer"] = example["fhirServer"].replace("http://127.0.0.1:8080", base)
        response = requests.post(f"{base}/cds-services/baclofen-order-sign", json=example, timeout=10)
        assert response.status_code == 200
        cards = response.json()["cards"]
        renal = next(card for card in cards if card["source"]["topic"]["code"] == "renal-avoid")
        assert renal["indicator"] == "critical" and "eGFR 24" in renal["summary"]
        assert requests.get(f"{base}/demo", timeout=10).status_code == 200
