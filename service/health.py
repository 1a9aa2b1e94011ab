"""GET /readyz: may this instance take traffic? (GET /healthz, in discovery.py, is liveness.)

Ready when the store answers at the schema this code expects and the trusted issuers'
key sets are loaded. A load balancer or Kubernetes sends calls only to ready instances;
liveness stays a constant so that a database outage does not restart every replica.

A schema behind this code (a known older revision, or none) is not ready: run
`baclofen-cds db upgrade`. A schema at a revision this code does not know was migrated by
a newer version during a rolling upgrade: still ready, because migrations are written to
keep the previous version working (docs/deploy.md); otherwise every old replica would
drop out at the moment the new version migrates, before any new one is up.
"""
from __future__ import annotations

import functools

from flask import Blueprint, jsonify

from . import tracing
from .logs import get_logger
from .state import app_state
from .store import migrate

blueprint = Blueprint("health", __name__)
log = get_logger()


@blueprint.get("/readyz")
def readyz():
    problems = readiness_problems(app_state())
    if problems:
        return jsonify({"status": "not ready", "problems": problems}), 503
    return jsonify({"status": "ready"})


def readiness_problems(state) -> dict[str, str]:
    """What keeps this instance from answering hook calls, by check; empty when ready."""
    problems = {}
    store = _store_problem(state.store)
    if store:
        problems["store"] = store
    keys = _unloaded_key_sets(getattr(state, "verifier", None))
    if keys:
        problems["keys"] = "key set not loaded: " + ", ".join(keys)
    return problems


@functools.cache
def _revisions() -> tuple[str, frozenset[str]]:
    """This code's head revision and every revision it knows."""
    return migrate.head_revision(), frozenset(migrate.known_revisions())


def _store_problem(store) -> str | None:
    if store is None:
        return None  # no store configured (in-process `call`): nothing to wait for
    try:
        with tracing.untraced():  # probed every few seconds: not worth a trace each
            revision = migrate.current_revision(store.engine)
    except Exception as error:  # noqa: BLE001 - any driver error means "not answering"
        log.warning("store not answering", extra={"event": "not_ready", "reason": type(error).__name__})
        return f"not answering ({type(error).__name__})"
    head, known = _revisions()
    if revision is None or (revision in known and revision != head):
        return f"schema at {revision or 'nothing'}, this version needs {head} (run `baclofen-cds db upgrade`)"
    return None


def _unloaded_key_sets(verifier) -> list[str]:
    """Issuers whose configured key set has no key yet; URL sets are (re)tried here, at
    most once per auth.jwks_refetch_interval."""
    if verifier is None:
        return []
    return [issuer for issuer, keys in verifier.issuers.items() if not keys.configured.ensure_loaded()]
