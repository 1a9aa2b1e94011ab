"""OpenTelemetry tracing, opt-in with the standard OTEL_* environment variables.

On when OTEL_TRACES_EXPORTER names an exporter (`otlp`, `console`) or an OTLP endpoint is
set (OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), unless
OTEL_SDK_DISABLED=true. Then each hook call is a server span (continuing the EHR's
`traceparent`), each FHIR query a client span that sends `traceparent` to the FHIR server,
each store statement a span, and JSON log lines carry the trace and span ids. Service
name, sampler, endpoint, headers and batching come from the usual OTEL_* variables.

Off (the default), nothing of OpenTelemetry is imported and no code runs on a call.
Spans carry no patient data: FHIR query URLs are cut to the resource type, and the
service's own demo FHIR server and probe routes are not traced.
"""
from __future__ import annotations

import contextlib
import os
from urllib.parse import urlsplit

from . import logs
from .config import ConfigError

DEFAULT_SERVICE_NAME = "baclofen-cds"
UNTRACED_ROUTES = "healthz,readyz,metrics,demo/fhir,demo/static"
SUPPORTED_EXPORTERS = ("otlp", "console")

_process = {"provider": None, "deferred": False}


def enabled(environ=os.environ) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def install(app, store) -> None:
    """Trace this app (and, once per process, outgoing HTTP and thread hand-offs)."""
    if not enabled():
        return
    try:
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    except ImportError:
        raise ConfigError("OTEL_* tracing is configured but OpenTelemetry is not installed: "
                          "pip install 'baclofen-cds[otel]'") from None
    exporter = _exporter()  # a wrong OTEL_* value stops start-up, in the master too
    if _process["deferred"]:
        return
    _set_up_process(exporter)
    FlaskInstrumentor.instrument_app(app, excluded_urls=UNTRACED_ROUTES)
    if store is not None:
        # Its declared range stops below SQLAlchemy 2.1, which it traces fine (tested here).
        SQLAlchemyInstrumentor().instrument(engine=store.engine, enable_commenter=False, skip_dep_check=True)


def defer_to_workers() -> None:
    """In a gunicorn master, which builds the app only to check it: trace nothing here, so
    that each worker sets tracing up once, for itself (instrumentors act once per process)."""
    _process["deferred"] = True


def start_in_worker() -> None:
    _process["deferred"] = False


def untraced():
    """A block whose store statements and HTTP requests make no spans (probes)."""
    if _process["provider"] is None:
        return contextlib.nullcontext()
    from opentelemetry.instrumentation.utils import suppress_instrumentation

    return suppress_instrumentation()


def outside_any_trace():
    """A block whose spans (and threads started in it) belong to no call's trace: the card
    batch writes for many calls at once."""
    if _process["provider"] is None:
        return contextlib.nullcontext()
    return _detached()


@contextlib.contextmanager
def _detached():
    from opentelemetry import context

    token = context.attach(context.Context())
    try:
        yield
    finally:
        context.detach(token)


def flush() -> None:
    """Export the spans still buffered (a worker about to exit)."""
    provider = _process["provider"]
    if provider is not None:
        provider.force_flush()


def _set_up_process(exporter) -> None:
    if _process["provider"] is not None:
        return
    from opentelemetry import trace
    from opentelemetry.instrumentation.threading import ThreadingInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": DEFAULT_SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    # The FHIR queries of one call run on a thread pool: carry the call's span over to them.
    ThreadingInstrumentor().instrument()
    # FHIR query URLs name the patient: spans keep the server and the resource type only.
    URLLib3Instrumentor().instrument(url_filter=redact_fhir_url)
    logs.trace_ids = _current_trace_ids
    _process["provider"] = provider


def _exporter():
    name = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ConfigError(f"OTEL_TRACES_EXPORTER={name}: use one of {', '.join(SUPPORTED_EXPORTERS)} or none")
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    if protocol != "http/protobuf":
        raise ConfigError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: only http/protobuf is installed")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def redact_fhir_url(url: str) -> str:
    """'https://ehr/fhir/Observation?patient=7&code=x' -> 'https://ehr/fhir/Observation';
    'https://ehr/fhir/Patient/7' -> 'https://ehr/fhir/Patient/{id}'."""
    parts = urlsplit(url)
    kept = []
    for segment in parts.path.split("/"):
        kept.append(segment)
        if segment[:1].isupper():  # a FHIR resource type: what follows names a record
            if len(kept) < len(parts.path.split("/")):
                kept.append("{id}")
            break
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{'/'.join(kept)}"


def _current_trace_ids() -> dict[str, str]:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
