"""Prometheus metrics: hook requests and latency per service, cards per topic and indicator,
FHIR fetch errors, feedback per outcome. No label ever holds patient data.

Under gunicorn each worker is a process; the serve command calls `prepare_multiprocess`
before forking so that every worker writes its samples to PROMETHEUS_MULTIPROC_DIR and
/metrics adds them up. The metric objects are created on first use, after that choice.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               disable_created_metrics, generate_latest, multiprocess, values)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_lock = threading.Lock()
_registry: CollectorRegistry | None = None
_metrics: dict[str, Counter | Histogram] = {}
# (metric name, label values) -> its child: labels() validates and locks on every call. The
# label values are from fixed sets (services, statuses, topics, reasons), so this stays small.
_children: dict[tuple, Counter | Histogram] = {}


def prepare_multiprocess(directory: str | os.PathLike) -> None:
    """Call once in the gunicorn master before workers start: empties `directory` of the
    previous run's samples and switches prometheus-client to multiprocess mode."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path.resolve())
    values.ValueClass = values.get_value_class()


def mark_worker_dead(pid: int) -> None:
    """For gunicorn's child_exit hook (only gauges need it; harmless otherwise)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)


def observe_hook(service_id: str, status: int, seconds: float) -> None:
    _child("requests", service_id, str(status)).inc()
    _child("latency", service_id).observe(seconds)


def count_cards(service_id: str, cards: list[dict]) -> None:
    for card in cards:
        topic = ((card.get("source") or {}).get("topic") or {}).get("code", "")
        _child("cards", service_id, topic, card.get("indicator", "")).inc()


def count_suppressed(service_id: str, item) -> None:
    """A card found but not shown (item: service.store.SuppressedCard)."""
    topic = ((item.card.get("source") or {}).get("topic") or {}).get("code", "")
    _child("suppressed", service_id, topic, item.why).inc()


def count_fetch_error(data_key: str, reason: str) -> None:
    _child("fetch_errors", data_key, reason).inc()


def count_feedback(service_id: str, items) -> None:
    for item in items:
        _child("feedback", service_id, item.outcome).inc()


def _child(name: str, *labels: str):
    child = _children.get((name, *labels))
    if child is None:
        child = _children[(name, *labels)] = _get()[name].labels(*labels)
    return child


def render() -> tuple[bytes, str]:
    """The exposition text (summed over worker processes in multiprocess mode)."""
    _get()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = _registry
    return generate_latest(registry), CONTENT_TYPE_LATEST


def _get() -> dict[str, Counter | Histogram]:
    if not _metrics:
        with _lock:
            if not _metrics:
                _create()
    return _metrics


def _create() -> None:
    global _registry
    disable_created_metrics()  # the *_created series only add noise here
    _registry = CollectorRegistry(auto_describe=True)
    _metrics["requests"] = Counter(
        "cds_hook_requests", "CDS Hooks service calls by response status",
        ["service", "status"], registry=_registry)
    _metrics["latency"] = Histogram(
        "cds_hook_duration_seconds", "Time to answer a CDS Hooks service call",
        ["service"], buckets=LATENCY_BUCKETS, registry=_registry)
    _metrics["cards"] = Counter(
        "cds_cards", "Cards issued by topic and indicator",
        ["service", "topic", "indicator"], registry=_registry)
    _metrics["suppressed"] = Counter(
        "cds_cards_suppressed", "Cards found but not shown (already overridden), by topic and why",
        ["service", "topic", "why"], registry=_registry)
    _metrics["fetch_errors"] = Counter(
        "cds_fhir_fetch_errors", "FHIR queries that failed, by data key and reason",
        ["data_key", "reason"], registry=_registry)
    _metrics["feedback"] = Counter(
        "cds_feedback", "Feedback items received by outcome",
        ["service", "outcome"], registry=_registry)
