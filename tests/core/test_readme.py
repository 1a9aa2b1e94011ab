"""The README is true: its configuration table is the real defaults, its walkthrough works."""
from __future__ import annotations

import json
import os
import re
import subprocess

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
    """The README's own commands, run by bash, against a server on a port other than 8080."""
    walkthrough = next(block for block in re.findall(r"```sh\n(.*?)\n```", README, re.S) if "curl" in block)
    assert "8080" not in (REPO_ROOT / "fhir_fixtures/examples/order-sign-renal-avoid.json").read_text()
    env = {**os.environ, "BACLOFEN_CDS_SERVER__INSTANCE_PATH": str(tmp_path / "instance")}
    with serve_cli(["--demo"], tmp_path, env=env) as base:
        port = base.rsplit(":", 1)[1]
        assert port != "8080"
        assert requests.get(f"{base}/demo", timeout=10).status_code == 200
        script = re.sub(r"^PORT=8080\b", f"PORT={port}", walkthrough, flags=re.M)
        assert script != walkthrough, "the walkthrough no longer sets PORT=8080"
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    cards = json.loads(result.stdout)["cards"]
    renal = next(card for card in cards if card["source"]["topic"]["code"] == "renal-avoid")
    assert renal["indicator"] == "critical" and "eGFR 24" in renal["summary"]
    assert not any(card["source"]["topic"]["code"] == "data-unavailable" for card in cards)


def test_readme_says_where_to_open_the_demo_next_to_the_serve_command():
    first_command_end = README.index("serve --demo\n```") + len("serve --demo\n```")
    test_command = README.index(".venv/bin/pytest\n```")
    between = README[first_command_end:test_command]
    assert "/demo>" in between and "holds the terminal" in between
