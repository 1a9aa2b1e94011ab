"""Schemathesis against the service's own /openapi.json, in process (WSGI), with every
check schemathesis has: no 5xx, responses as documented (status codes, content types,
headers, schemas), valid bodies accepted and invalid ones rejected, Allow headers."""
from __future__ import annotations

import tempfile

import schemathesis
from schemathesis.config import SchemathesisConfig
from hypothesis import HealthCheck, settings

from service.app import create_app

MAX_EXAMPLES = 40


def fuzz_app():
    """Unauthenticated (no issuers) so generated bodies reach the hook and feedback code;
    FHIR fetches may only go to a closed local port."""
    folder = tempfile.mkdtemp(prefix="baclofen-cds-schemathesis-")
    return create_app({
        "server": {"instance_path": folder},
        "fhir": {"allowed_servers": ["http://127.0.0.1:9/fhir"], "total_timeout": 0.5,
                 "retries": 0},
    })


# 412 is how CDS Hooks answers a call whose data is neither prefetched nor fetchable from
# an allowed server: a fact of the deployment the schema cannot express. The patient-view
# service always needs the chart, so schema-valid calls without one get it.
CONFIG = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]}}})

schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app(), config=CONFIG)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_fails(case):
    case.call_and_validate()  # all checks
