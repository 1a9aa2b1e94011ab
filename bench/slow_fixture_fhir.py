"""The bundled fixture patients as a FHIR server answering every request after 200 ms, for
`gunicorn -k gevent bench.slow_fixture_fhir:app` (bench/servers.py, fetch scenario): many
slow requests at once cost it almost no CPU."""
import time

from bench.fixture_fhir import app as fixtures

LATENCY_SECONDS = 0.2


def app(environ, start_response):
    time.sleep(LATENCY_SECONDS)  # cooperative under gevent's monkey-patching
    return fixtures(environ, start_response)
