"""The service's own FHIR queries: all of one hook call in parallel, within one time budget.

A failed query never raises: it comes back as a FetchResult with an `error`, which the
engine turns into a "could not check" card.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import urllib3

from .config import FhirConfig
from .fhir_access import is_within
from .fhir_transport import ACCEPT_ENCODING, Cancel, Limits, QueryFailed, get_json, new_pool

FHIR_JSON = "application/fhir+json"


@dataclass(frozen=True)
class FetchResult:
    resources: tuple[dict, ...] = ()
    error: str | None = None  # why the query failed; None when it succeeded


class FhirClient:
    def __init__(self, config: FhirConfig):
        self.config = config
        self.limits = Limits(
            max_body_bytes=config.max_body_bytes, max_entries=config.max_bundle_entries,
            max_depth=config.max_json_depth, connect_timeout=config.connect_timeout,
            retries=config.retries)
        self._pool: urllib3.PoolManager | None = None
        self._pool_pid: int | None = None
        self._lock = threading.Lock()

    def fetch(self, base_url: str, token: str | None, queries: dict[str, str]) -> dict[str, FetchResult]:
        """Run the relative queries against base_url in parallel; total time is bounded.

        Each call has its own threads: queries stuck on one server never hold up the calls
        to another. At the deadline the call's unfinished queries are cancelled (their
        sockets shut), so their threads end too."""
        if not queries:
            return {}
        deadline = time.monotonic() + self.config.total_timeout
        cancels = {key: Cancel() for key in queries}
        executor = ThreadPoolExecutor(max_workers=min(len(queries), self.config.max_workers),
                                      thread_name_prefix="fhir")
        futures = {
            key: executor.submit(self._query, base_url.rstrip("/"), token, query, deadline,
                                 cancels[key])
            for key, query in queries.items()
        }
        executor.shutdown(wait=False)
        done, _ = wait(futures.values(), timeout=self.config.total_timeout)
        for key, future in futures.items():
            if future not in done:
                future.cancel()
                cancels[key].cancel()
        return {
            key: future.result() if future in done else FetchResult(error="timeout")
            for key, future in futures.items()
        }

    def _query(self, base_url: str, token: str | None, query: str, deadline: float,
               cancel: Cancel) -> FetchResult:
        url = f"{base_url}/{query.lstrip('/')}"
        resources: list[dict] = []
        for _ in range(self.config.max_pages):
            # The token goes to the server named in the request and nowhere else.
            if not is_within(url, base_url):
                return FetchResult(error="URL outside the FHIR server")
            try:
                page = self._get_json(url, token, deadline, cancel)
            except QueryFailed as failure:
                return FetchResult(error=failure.reason)
            if page.get("resourceType") == "OperationOutcome":
                return FetchResult(error="OperationOutcome")
            if page.get("resourceType") != "Bundle":
                return FetchResult(resources=(page,))
            entries, error = bundle_resources(page)
            if error:
                return FetchResult(error=error)
            resources.extend(entries)
            if len(resources) > self.limits.max_entries:
                return FetchResult(error="too many entries")
            url = next_link(page)
            if not url:
                break
        return FetchResult(resources=tuple(resources))

    def _get_json(self, url: str, token: str | None, deadline: float, cancel: Cancel) -> dict:
        headers = {"Accept": FHIR_JSON, **ACCEPT_ENCODING}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return get_json(self._shared_pool(), url, headers, deadline, self.limits, cancel)

    def _shared_pool(self) -> urllib3.PoolManager:
        # Created lazily and per process: gunicorn forks workers after the app is built.
        # Its connection pools are thread-safe; a connection is used by one query at a time.
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = new_pool(self.config.retries, pool_size=64)
                self._pool_pid = os.getpid()
            return self._pool


def bundle_resources(bundle: dict) -> tuple[list[dict], str | None]:
    """The Bundle's resources, or why it cannot be used (an error OperationOutcome entry)."""
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        return [], "unreadable"
    resources = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            continue
        if resource.get("resourceType") == "OperationOutcome":
            if is_error_outcome(resource):
                return [], "OperationOutcome"
            continue
        resources.append(resource)
    return resources, None


def is_error_outcome(outcome: dict) -> bool:
    issues = outcome.get("issue") or []
    return any(isinstance(i, dict) and i.get("severity") in ("error", "fatal") for i in issues)


def next_link(bundle: dict) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None
