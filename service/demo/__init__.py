"""The demo (`serve --demo`): fixture patients on a FHIR server at /demo/fhir, and a page
at /demo that orders for them through the real hook endpoint and shows the cards.

The page asks /demo/api/hook-request for an order-sign request (fhirServer = /demo/fhir,
absolute, no prefetch) about the order composed on the page or the story's own draft
orders, or for a patient-view request about the open chart (the next steps for cramps on
baclofen), posts it to /cds-services/{id} itself, renders the card details
through /demo/api/render and posts feedback to /cds-services/{id}/feedback.
"""
from __future__ import annotations

from datetime import date

from flask import Blueprint, Flask, jsonify, render_template, request
from markdown_it import MarkdownIt

from cards.catalog import render_catalog
from fhir_fixtures import PATIENT_VIEW_STORIES, all_stories
from fhir_fixtures.fhir_server import InMemoryFhir, fhir_blueprint, simulated_failures
from fhir_fixtures.requests import PATIENT_VIEW, hook_request

from ..fhir_access import DEMO_FHIR_PATH, own_base_url
from ..request_checks import read_json_body
from .chart import patient_chart
from .orders import FREQUENCIES, PRODUCTS, OrderError, OrderForm, draft_medication_request

FHIR_PREFIX = DEMO_FHIR_PATH
MAX_RENDER_CHARS = 100_000
# CommonMark without raw HTML (escaped, never passed through), plus GFM tables and ~~strike~~.
_markdown = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    return _markdown.render(text)


def install(app: Flask, state) -> None:
    every_story = all_stories() + all_stories(folder=PATIENT_VIEW_STORIES)
    stories = {story["patient"]["id"]: story for story in every_story}
    fhir = InMemoryFhir.from_stories(stories.values())
    # Stories about a failed FHIR query fail it here; a timeout outlasts the service's budget.
    failures = simulated_failures(stories.values(), state.prefetch_templates)
    timeout = state.config.fhir.total_timeout + 1.0
    app.register_blueprint(fhir_blueprint(fhir, "demo_fhir", failures, timeout), url_prefix=FHIR_PREFIX)
    app.register_blueprint(demo_blueprint(stories, state), url_prefix="/demo")


def demo_blueprint(stories: dict[str, dict], state) -> Blueprint:
    """The page and its API; `stories` by patient id."""
    blueprint = Blueprint("demo", __name__, template_folder="templates",
                          static_folder="static", static_url_path="/static")
    charts = [patient_chart(story) for story in stories.values()]

    @blueprint.get("")
    @blueprint.get("/")
    def page():
        return render_template("demo/ehr.html", charts=charts, products=PRODUCTS,
                               frequencies=FREQUENCIES)

    @blueprint.get("/rules")
    def rules():
        return render_template("demo/rules.html",
                               catalog_html=render_markdown(render_catalog(state.knowledge)))

    @blueprint.post("/api/hook-request")
    def build_hook_request():
        body = read_json_body(request, state.config.server)
        body = body if isinstance(body, dict) else {}
        story = stories.get(str(body.get("patientId")))
        hook = body.get("hook", "order-sign")
        if story is None or hook not in ("order-sign", "order-select", PATIENT_VIEW):
            return jsonify({"error": "choose a fixture patient and order-sign, order-select"
                                     f" or {PATIENT_VIEW}"}), 400
        if hook == PATIENT_VIEW:
            return jsonify(hook_request(story, hook, prefetch="none", fhir_server=_fhir_server_url()))
        try:
            drafts = None if body.get("storyOrder") else [composed_draft(body, story)]
        except OrderError as error:
            return jsonify({"error": str(error)}), 400
        return jsonify(hook_request(story, hook, prefetch="none", fhir_server=_fhir_server_url(),
                                    drafts=drafts))

    @blueprint.post("/api/render")
    def render():
        body = read_json_body(request, state.config.server)
        texts = body.get("markdown") if isinstance(body, dict) else None
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts) \
                or sum(map(len, texts)) > MAX_RENDER_CHARS:
            return jsonify({"error": "markdown: a list of strings"}), 400
        return jsonify({"html": [render_markdown(text) for text in texts]})

    return blueprint


def composed_draft(body: dict, story: dict) -> dict:
    """The order composed on the page, as a draft for the story's patient."""
    order = OrderForm.from_json(body.get("order") or {})
    return draft_medication_request(order, story["patient"]["id"], date.today())


def _fhir_server_url() -> str:
    """The demo FHIR server as the service reaches itself: its own listening address, the
    one FHIR server allowed without configuration (never the Host header's)."""
    return (own_base_url(request.environ) or "") + DEMO_FHIR_PATH
