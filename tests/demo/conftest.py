"""The demo-enabled service, served on loopback by a threaded server (it calls itself:
the hook endpoint fetches from /demo/fhir on the same server)."""
from __future__ import annotations

import pytest

from fhir_fixtures import all_stories
from service import create_app
from tests.fhir_server_helpers import serve_wsgi


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    app = create_app({"demo": {"enabled": True},
                      "server": {"instance_path": str(tmp_path_factory.mktemp("instance"))}})
    app.testing = True
    return app


@pytest.fixture(scope="module")
def served_demo(demo_app):
    with serve_wsgi(demo_app) as served:
        yield served


@pytest.fixture(scope="module")
def stories():
    return all_stories()


@pytest.fixture(scope="module")
def renal_failure_story(stories):
    """The story in which renal-avoid fires (critical): eGFR < 30 or dialysis."""
    candidates = [s for s in stories if s["expect"].get("fires", {}).get("renal-avoid") == "critical"]
    assert candidates, "no fixture story fires renal-avoid"
    return min(candidates, key=lambda story: (not story["id"].startswith("renal"), len(story["id"])))
