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

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .config import FhirConfig
from .fhir_access import is_within

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = (502, 503, 504)


@dataclass(frozen=True)
class FetchResult:
    resources: tuple[dict, ...] = ()
    error: str | None = None  # why the query failed; None when it succeeded


class FhirClient:
    def __init__(self, config: FhirConfig):
        self.config = config
        self._local = threading.local()
        self._executor: ThreadPoolExecutor | None = None
        self._executor_pid: int | None = None
        self._lock = threading.Lock()

    def fetch(self, base_url: str, token: str | None, queries: dict[str, str]) -> dict[str, FetchResult]:
        """Run the relative queries against base_url in parallel; total time is bounded."""
        if not queries:
            return {}
        deadline = time.monotonic() + self.config.total_timeout
        executor = self._pool()
        futures = {
            key: executor.submit(self._query, base_url.rstrip("/"), token, query, deadline)
            for key, query in queries.items()
        }
        done, _ = wait(futures.values(), timeout=self.config.total_timeout)
        return {
            key: future.result() if future in done else FetchResult(error="timeout")
            for key, future in futures.items()
        }

    def _query(self, base_url: str, token: str | None, query: str, deadline: float) -> FetchResult:
        url = f"{base_url}/{query.lstrip('/')}"
        resources: list[dict] = []
        for _ in range(self.config.max_pages):
            # The token goes to the server named in the request and nowhere else.
            if not is_within(url, base_url):
                return FetchResult(error="URL outside the FHIR server")
            try:
                page = self._get_json(url, token, deadline)
            except _QueryFailed as failure:
                return FetchResult(error=failure.reason)
            if page.get("resourceType") == "OperationOutcome":
                return FetchResult(error="OperationOutcome")
            if page.get("resourceType") != "Bundle":
                return FetchResult(resources=(page,))
            entries, error = bundle_resources(page)
            if error:
                return FetchResult(error=error)
            resources.extend(entries)
            url = next_link(page)
            if not url:
                break
        return FetchResult(resources=tuple(resources))

    def _get_json(self, url: str, token: str | None, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _QueryFailed("timeout")
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._session().get(
                url, headers=headers, allow_redirects=False,
                timeout=(min(self.config.connect_timeout, remaining), remaining),
            )
        except requests.Timeout:
            raise _QueryFailed("timeout") from None
        except requests.RequestException:
            raise _QueryFailed("connection failed") from None
        except (ValueError, UnicodeError):  # a URL or header the HTTP stack cannot send
            raise _QueryFailed("request not sendable") from None
        if response.status_code != 200:
            raise _QueryFailed(f"HTTP {response.status_code}")
        try:
            page = response.json()
        except ValueError:
            raise _QueryFailed("unreadable") from None
        if not isinstance(page, dict):
            raise _QueryFailed("unreadable")
        return page

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.trust_env = False  # no proxies or .netrc credentials from the environment
            retries = self.config.retries
            adapter = HTTPAdapter(max_retries=Retry(
                total=retries, connect=retries, status=retries, read=False, other=0, redirect=0,
                status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET"}),
                backoff_factor=0, raise_on_status=False, respect_retry_after_header=False,
            ))
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._local.session = session
        return session

    def _pool(self) -> ThreadPoolExecutor:
        # Created lazily and per process: gunicorn forks workers after the app is built.
        with self._lock:
            if self._executor is None or self._executor_pid != os.getpid():
                self._executor = ThreadPoolExecutor(
                    max_workers=self.config.max_workers, thread_name_prefix="fhir")
                self._executor_pid = os.getpid()
            return self._executor


class _QueryFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


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
