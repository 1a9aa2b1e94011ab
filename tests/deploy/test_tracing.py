"""OpenTelemetry, switched on by the standard OTEL_* variables: a served hook call is one
trace, continuing the EHR's, with a span per FHIR query (whose traceparent reaches the
FHIR server) and per store statement; the JSON log lines carry the trace id. Off by
default, OpenTelemetry is not even imported."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from service import tracing
from service.config import ConfigError
from service.tracing import redact_fhir_url
from tests.deploy.replicas import (ORDER_SIGN, RENAL_STORY, Replica, renal_avoid_card,
                                   renal_fhir_app, renal_order_sign, replica_env)
from tests.fhir_server_helpers import REPO_ROOT, serve_wsgi
from tests.store.helpers import create_postgres_database, drop_postgres_database, postgres_unreachable_reason

EHR_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
EHR_SPAN_ID = "00f067aa0ba902b7"


class Collector:
    """An OTLP/HTTP trace receiver: keeps every span exported to /v1/traces."""

    def __init__(self):
        self.spans: list[Span] = []
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        export = ExportTraceServiceRequest.FromString(environ["wsgi.input"].read(length))
        with self._lock:
            for resource_spans in export.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        start_response("200 OK", [("Content-Type", "application/x-protobuf")])
        return [b""]


def attributes(span: Span) -> dict:
    return {item.key: getattr(item.value, item.value.WhichOneof("value")) for item in span.attributes}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def traced_call(request, tmp_path_factory):
    """One order-sign call through a traced replica; (response, FHIR requests, spans, log)."""
    tmp_path = tmp_path_factory.mktemp(f"traced-{request.param}")
    if request.param == "sqlite":
        yield _traced_call(tmp_path, "")
        return
    reason = postgres_unreachable_reason()
    if reason:
        pytest.skip(reason)
    database_url = create_postgres_database()
    try:
        yield _traced_call(tmp_path, database_url)
    finally:
        drop_postgres_database(database_url)


def _traced_call(tmp_path, database_url: str):
    collector = Collector()
    with serve_wsgi(collector) as otlp, serve_wsgi(renal_fhir_app()) as fhir:
        env = replica_env(tmp_path, database_url, fhir_server=fhir.url, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
                          OTEL_BSP_SCHEDULE_DELAY="100")
        replica = Replica("traced", tmp_path, env, arguments=("--workers", "1")).start()
        try:
            response = requests.post(
                f"{replica.url}/cds-services/{ORDER_SIGN}", json=renal_order_sign(fhir.url), timeout=20,
                headers={"traceparent": f"00-{EHR_TRACE_ID}-{EHR_SPAN_ID}-01"})
            assert replica.terminate() == 0  # a worker exports what it holds as it exits
        finally:
            replica.stop()
        return response, list(fhir.requests), list(collector.spans), replica.log.read_text()


def test_a_hook_call_is_one_trace_continuing_the_ehrs(traced_call):
    response, fhir_requests, spans, _ = traced_call
    assert response.status_code == 200 and renal_avoid_card(response.json()["cards"])
    (server,) = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert server.trace_id.hex() == EHR_TRACE_ID and server.parent_span_id.hex() == EHR_SPAN_ID
    assert f"/cds-services/{ORDER_SIGN}" in server.name or attributes(server).get("http.route", "").startswith("/cds-services/")
    # Every other trace is the card batch writing for whichever calls were queued (its
    # connection and transaction), never work of this call.
    others = {}
    for span in spans:
        if span.trace_id.hex() != EHR_TRACE_ID:
            others.setdefault(span.trace_id, []).append(span)
    for trace in others.values():
        assert all(is_store_span(s) for s in trace), [s.name for s in trace]


def test_each_fhir_query_is_a_span_whose_traceparent_reaches_the_fhir_server(traced_call):
    _, fhir_requests, spans, _ = traced_call
    server_id = next(s for s in spans if s.kind == Span.SPAN_KIND_SERVER).span_id
    clients = {s.span_id.hex(): s for s in spans
               if s.kind == Span.SPAN_KIND_CLIENT and {"http.method", "http.request.method"} & set(attributes(s))}
    assert fhir_requests, "the call fetched nothing"
    for fhir_request in fhir_requests:
        version, trace_id, span_id, _flags = fhir_request.traceparent.split("-")
        assert (version, trace_id) == ("00", EHR_TRACE_ID)
        assert clients[span_id].parent_span_id == server_id  # across the query thread pool
    assert len(clients) == len(fhir_requests)


def statement(span: Span) -> str:
    return str(attributes(span).get("db.statement", attributes(span).get("db.query.text", "")))


def is_store_span(span: Span) -> bool:
    return bool({"db.system", "db.system.name"} & set(attributes(span))) or span.name == "connect"


def test_store_statements_are_spans_and_the_card_batch_is_outside_the_calls_trace(traced_call):
    _, _, spans, _ = traced_call
    batch = [s for s in spans if is_store_span(s) if "INSERT INTO cards" in statement(s)]
    assert batch, "the card record made no span"
    # Written by a background thread for whichever calls are queued: in no call's trace.
    assert all(s.trace_id.hex() != EHR_TRACE_ID for s in batch)


def test_spans_carry_no_patient_data(traced_call):
    _, _, spans, _ = traced_call
    text = json.dumps([attributes(s) for s in spans] + [s.name for s in spans])
    assert RENAL_STORY not in text  # the patient id is in every FHIR query's URL


def test_log_lines_of_the_call_carry_its_trace_id(traced_call):
    _, _, _, log = traced_call
    entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    answered = [entry for entry in entries if entry.get("event") == "hook_answered"]
    assert answered and all(entry["trace_id"] == EHR_TRACE_ID for entry in answered)


def test_fhir_urls_are_cut_to_the_resource_type():
    assert redact_fhir_url("https://ehr.example/fhir/Observation?patient=p1&code=x") == \
        "https://ehr.example/fhir/Observation"
    assert redact_fhir_url("http://127.0.0.1:9/demo/fhir/Patient/p1") == "http://127.0.0.1:9/demo/fhir/Patient/{id}"


def test_off_by_default_nothing_is_imported_and_no_traceparent_is_sent(tmp_path):
    script = (
        "import json, sys\n"
        "from service import create_app\n"
        "app = create_app({'server': {'instance_path': sys.argv[1]},\n"
        "                  'fhir': {'allowed_servers': [json.loads(sys.argv[2])['fhirServer']]}})\n"
        "response = app.test_client().post('/cds-services/baclofen-order-sign', json=json.loads(sys.argv[2]))\n"
        "assert response.status_code == 200, response.data\n"
        "print(sorted(name for name in sys.modules if name.startswith('opentelemetry')))\n")
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    with serve_wsgi(renal_fhir_app()) as fhir:
        body = renal_order_sign(fhir.url)
        result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "instance"), json.dumps(body)],
                                cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert fhir.requests and all(r.traceparent is None for r in fhir.requests)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("environ, on", [
    ({}, False),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False),
    ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
])
def test_tracing_is_on_only_when_the_standard_variables_ask_for_it(environ, on):
    assert tracing.enabled(environ) is on


@pytest.mark.parametrize("variable, value, named", [
    ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER=zipkin"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
])
def test_an_exporter_this_install_cannot_serve_stops_start_up_naming_the_variable(monkeypatch, variable,
                                                                               value, named):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=named):
        tracing._exporter()


def test_the_console_exporter_is_available(monkeypatch):
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert isinstance(tracing._exporter(), ConsoleSpanExporter)
