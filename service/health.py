"""GET /readyz: may this instance take traffic? (GET /healthz, in discovery.py, is liveness.)

Ready when the store answers at the schema this code expects (a replica started before
`db upgrade`, or on a database another version migrated, is not) and the trusted issuers'
key sets are loaded. A load balancer or Kubernetes sends calls only to ready instances;
liveness stays a constant so that a database outage does not restart every replica.
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
def _head_revision() -> str:
    return migrate.head_revision()


def _store_problem(store) -> str | None:
    if store is None:
        return None  # no store configured (in-process `call`): nothing to wait for
    try:
        with tracing.untraced():  # probed every few seconds: not worth a trace each
            revision = migrate.current_revision(store.engine)
    except Exception as error:  # noqa: BLE001 - any driver error means "not answering"
        log.warning("store not answering", extra={"event": "not_ready", "reason": type(error).__name__})
        return f"not answering ({type(error).__name__})"
    if revision != _head_revision():
        return f"schema at {revision}, this version needs {_head_revision()} (run `baclofen-cds db upgrade`)"
    return None


def _unloaded_key_sets(verifier) -> list[str]:
    """Issuers whose configured key set has no key yet; URL sets are (re)tried here, at
    most once per auth.jwks_refetch_interval."""
    if verifier is None:
        return []
    return [issuer for issuer, keys in verifier.issuers.items() if not keys.configured.ensure_loaded()]
