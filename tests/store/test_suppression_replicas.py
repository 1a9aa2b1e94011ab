"""Two `baclofen-cds serve` processes sharing one store (two replicas on PostgreSQL, or two
hosts' worth of processes on one SQLite file): an override sent to one suppresses the card
on the other, on its very next call."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests

from tests.fhir_server_helpers import serve_cli

from .helpers import postgres_url  # noqa: F401 - fixture
from .test_suppression import REASONS, WHEN, order

STARTUP_SECONDS = 30


def write_config(folder: Path, name: str, url: str) -> Path:
    """Each replica its own instance folder; the patient hash key is shared, as it must be."""
    path = folder / f"{name}.toml"
    path.write_text(f"""
[server]
instance_path = "{folder / name}"

[store]
url = "{url}"
patient_hash_key = "a-shared-key-from-the-secret-store-0123456789"
""")
    return path


def served(config: Path):
    return serve_cli(["--config", str(config), "--workers", "1", "--threads", "1"], config.parent,
                     env={"PATH": "/usr/bin:/bin", "HOME": str(config.parent)},
                     startup_seconds=STARTUP_SECONDS)


def topics(base: str, body: dict) -> dict[str, dict]:
    path = "baclofen-order-select" if body["hook"] == "order-select" else "baclofen-order-sign"
    response = requests.post(f"{base}/cds-services/{path}", timeout=10,
                             json={**body, "hookInstance": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    return {card["source"]["topic"]["code"]: card for card in response.json()["cards"]}


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    return request.getfixturevalue("postgres_url")


def test_an_override_sent_to_one_replica_suppresses_on_the_other(tmp_path, shared_store_url):
    first_config = write_config(tmp_path, "first", shared_store_url)
    second_config = write_config(tmp_path, "second", shared_store_url)
    with served(first_config) as first, served(second_config) as second:
        card = topics(first, order())["renal-reduce"]
        assert "renal-reduce" in topics(second, order("order-sign"))  # a cache would keep this
        response = requests.post(f"{first}/cds-services/baclofen-order-select/feedback", timeout=10, json={
            "feedback": [{"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": WHEN,
                          "overrideReason": {"reason": {"system": REASONS, "code": "benefit-outweighs-risk"}}}]})
        assert response.status_code == 200, response.text
        on_second = topics(second, order("order-sign"))
        assert "renal-reduce" not in on_second and "start-dose-high" in on_second
        assert "renal-reduce" in topics(second, order("order-sign", pills=2))
