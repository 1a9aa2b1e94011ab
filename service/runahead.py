"""Run-ahead for FHIR fetches: what one hook call fetched is reused by the next calls for the
same patient, from the same FHIR server, with the same access token, for `[runahead]
ttl_seconds` (60 s by default). The CDS Hooks Sandbox fires order-select on every change to
the order form and order-sign at signing: these then answer without refetching.

Never shared across tokens or patients: the key holds the server, the patient id, the query
and a keyed hash of the token (never the token itself; the hash key is random per process).
Bounded in memory: least recently used entries go first beyond `max_entries` or `max_bytes`
(the JSON size of what is kept). Only successful queries are kept, as JSON text, so that no
caller can change what the next one reads. One cache per FhirClient (per process).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
import weakref
from typing import Callable

from cachetools import TTLCache

from .config import RunaheadConfig
from .fhir_client import FetchResult, FhirClient

_caches: "weakref.WeakKeyDictionary[FhirClient, RunAhead]" = weakref.WeakKeyDictionary()


class RunAhead:
    def __init__(self, config: RunaheadConfig, timer: Callable[[], float] = time.monotonic):
        # Every entry costs at least max_bytes / max_entries, so that both bounds hold.
        self._least_size = max(1, config.max_bytes // config.max_entries)
        self._cache = TTLCache(maxsize=config.max_bytes, ttl=config.ttl_seconds, timer=timer,
                               getsizeof=self._size)
        self._lock = threading.Lock()
        self._token_key = secrets.token_bytes(32)

    def _size(self, value: str) -> int:
        return max(len(value), self._least_size)

    def fetch(self, fhir: FhirClient, base_url: str, token: str | None, patient_id: str | None,
              queries: dict[str, str]) -> dict[str, FetchResult]:
        keys = {name: self._key(base_url, token, patient_id, query) for name, query in queries.items()}
        results = {name: self._get(key) for name, key in keys.items()}
        missing = {name: queries[name] for name, result in results.items() if result is None}
        if missing:
            for name, result in fhir.fetch(base_url, token, missing).items():
                results[name] = result
                if result.error is None:
                    self._put(keys[name], result)
        return results

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    @property
    def bytes(self) -> int:
        with self._lock:
            return self._cache.currsize

    def _key(self, base_url: str, token: str | None, patient_id: str | None, query: str) -> tuple:
        token_hash = hmac.new(self._token_key, (token or "").encode(), hashlib.sha256).hexdigest()
        return base_url.rstrip("/"), token_hash, patient_id or "", query

    def _get(self, key: tuple) -> FetchResult | None:
        with self._lock:
            text = self._cache.get(key)
        return None if text is None else FetchResult(resources=tuple(json.loads(text)))

    def _put(self, key: tuple, result: FetchResult) -> None:
        text = json.dumps(result.resources, separators=(",", ":"))
        with self._lock:
            try:
                self._cache[key] = text
            except ValueError:  # larger than max_bytes on its own: not kept
                pass


def install(fhir: FhirClient, config: RunaheadConfig) -> None:
    """Give this client a run-ahead cache (the app factory calls it when enabled)."""
    _caches[fhir] = RunAhead(config)


def cache_of(fhir: FhirClient) -> RunAhead | None:
    return _caches.get(fhir)


def fetch(fhir: FhirClient, base_url: str, token: str | None, patient_id: str | None,
          queries: dict[str, str]) -> dict[str, FetchResult]:
    """fhir.fetch, through the client's run-ahead cache when it has one."""
    cache = _caches.get(fhir)
    if cache is None:
        return fhir.fetch(base_url, token, queries)
    return cache.fetch(fhir, base_url, token, patient_id, queries)
