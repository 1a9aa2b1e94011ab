"""The bundled fixture patients as a FHIR server app, for `gunicorn bench.fixture_fhir:app`."""
from fhir_fixtures import all_stories
from fhir_fixtures.fhir_server import InMemoryFhir, create_fhir_app

app = create_fhir_app(InMemoryFhir.from_stories(all_stories()))
