"""/readyz says whether an instance may take calls (store at the schema head, key sets
loaded); /healthz stays a constant liveness answer whatever the store does."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from service import create_app, health
from service.store import migrate
from tests.conftest import REPO_ROOT
from tests.store.helpers import (create_postgres_database, drop_postgres_database, make_config,
                                 postgres_unreachable_reason)

SANDBOX_JWKS = json.loads((REPO_ROOT / "docs" / "sandbox-jwks.json").read_text())
ISSUER = "https://ehr.example.org"
PUBLIC_URL = "https://cds.example.org"


def test_a_fresh_instance_is_ready(config):
    client = create_app(config).test_client()
    assert client.get("/readyz").json == {"status": "ready"}
    assert client.get("/healthz").json == {"status": "ok"}


def test_a_store_behind_the_code_is_not_ready(config):
    app = create_app(config)
    with app.extensions["baclofen_cds"].store.engine.begin() as connection:
        connection.execute(text("DELETE FROM alembic_version"))
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["problems"]["store"] == \
        f"schema at nothing, this version needs {migrate.head_revision()} (run `baclofen-cds db upgrade`)"
    assert client.get("/healthz").status_code == 200  # liveness: do not restart for this


def test_a_known_older_revision_is_behind(config, monkeypatch):
    """As soon as a second migration exists: a database at the first one is not ready."""
    app = create_app(config)
    first = migrate.head_revision()
    monkeypatch.setattr(health, "_revisions", lambda: ("0002_next", frozenset({first, "0002_next"})))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503 and f"schema at {first}," in response.json["problems"]["store"]


def test_a_schema_a_newer_version_migrated_stays_ready(config):
    """Mid rolling upgrade: the old replicas keep answering until the new ones are up."""
    app = create_app(config)
    with app.extensions["baclofen_cds"].store.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffff_from_a_newer_version'"))
    assert app.test_client().get("/readyz").json == {"status": "ready"}
    app.extensions["baclofen_cds"].store.close()
    reopened = create_app(config)  # a restart (or a rollback) of the older version starts
    assert reopened.test_client().get("/readyz").status_code == 200
    assert migrate.current_revision(reopened.extensions["baclofen_cds"].store.engine) == \
        "ffff_from_a_newer_version"


def test_a_store_that_does_not_answer_is_not_ready(tmp_path):
    reason = postgres_unreachable_reason()
    if reason:
        pytest.skip(reason)
    url = create_postgres_database()
    try:
        client = create_app(make_config(url, tmp_path / "instance")).test_client()
        assert client.get("/readyz").status_code == 200
        drop_postgres_database(url)  # WITH (FORCE): the pool's connections are cut too
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json["problems"]["store"].startswith("not answering")
        assert client.get("/healthz").status_code == 200
    finally:
        drop_postgres_database(url)


def test_an_issuer_key_set_not_yet_fetched_is_not_ready_until_it_is(tmp_path, fhir_server):
    """A jwks_url issuer's keys are fetched on demand; readiness waits for them."""
    fhir_server.expect_request("/jwks.json").respond_with_data("down", status=503)
    config = make_config("", tmp_path / "instance", server={"public_url": PUBLIC_URL}, auth={
        "issuers": [{"iss": ISSUER, "jwks_url": fhir_server.url_for("/jwks.json")}],
        "jwks_refetch_interval": 0})
    client = create_app(config).test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["problems"] == {"keys": f"key set not loaded: {ISSUER}"}
    fhir_server.clear()
    fhir_server.expect_request("/jwks.json").respond_with_json(SANDBOX_JWKS)
    assert client.get("/readyz").json == {"status": "ready"}
    assert client.get("/readyz").status_code == 200  # loaded once, kept


def test_issuers_with_key_files_are_ready_at_once(tmp_path):
    config = make_config("", tmp_path / "instance", server={"public_url": PUBLIC_URL}, auth={
        "issuers": [{"iss": ISSUER, "jwks_file": str(REPO_ROOT / "docs" / "sandbox-jwks.json")}]})
    assert create_app(config).test_client().get("/readyz").status_code == 200
