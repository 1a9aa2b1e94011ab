"""The application factory: configuration loaded once and passed down to the blueprints."""
from __future__ import annotations

from flask import Flask

from cards.knowledge import KnowledgeError, load_knowledge

from . import (admin, auth, discovery, feedback, health, hooks, logs, openapi, parsing, proxy,
               runahead, security_headers, suppression, tracing)
from .config import Config, ConfigError, load_config, validate_config
from .cors import install_cors
from .declarations import discovery_document, prefetch_templates
from .errors import register_error_handlers
from .fhir_client import FhirClient
from .state import AppState, app_state
from .store import open_store

__all__ = ["AppState", "app_state", "create_app"]


def create_app(config: Config | dict | None = None, *, with_store: bool = True) -> Flask:
    """The app; `with_store=False` (an in-process `baclofen-cds call`) opens no database and
    creates no instance folder."""
    config = _resolve_config(config)
    app = Flask(__name__, instance_path=str(config.instance_path.resolve()))
    app.json.sort_keys = False
    try:
        knowledge = load_knowledge(config.knowledge)
    except KnowledgeError as exc:
        raise ConfigError(f"knowledge: {exc}") from None
    state = AppState(
        config=config, knowledge=knowledge, fhir=FhirClient(config.fhir),
        prefetch_templates=prefetch_templates(knowledge), discovery=discovery_document(knowledge),
    )
    state.store = open_store(config) if with_store else None
    state.suppression = suppression.Policy.of(config, knowledge)
    if config.runahead.enabled:
        runahead.install(state.fhir, config.runahead)
    # Werkzeug stops reading a chunked body at this limit without an error; one byte more
    # lets read_json_body see that the body is over the configured limit.
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_body_bytes + 1
    parsing.warm_up()
    app.extensions["baclofen_cds"] = state
    logs.configure()
    register_error_handlers(app)
    install_cors(app, config.server.cors_origins)
    proxy.install(app, config.server)
    security_headers.install(app)
    auth.install(app, state)
    for blueprint in (discovery.blueprint, health.blueprint, hooks.blueprint, feedback.blueprint,
                      admin.blueprint):
        app.register_blueprint(blueprint)
    openapi.install(app)
    tracing.install(app, state.store)
    if config.demo.enabled:
        from . import demo  # the demo (and its bundled fixtures) loads only when asked for

        demo.install(app, state)
    return app


def _resolve_config(config: Config | dict | None) -> Config:
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return validate_config(config)
    return load_config()
