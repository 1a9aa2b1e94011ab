"""What the routes share, built once per process by the app factory."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import current_app

from .config import Config
from .fhir_client import FhirClient


@dataclass
class AppState:
    config: Config
    knowledge: Any  # cards.knowledge.Knowledge
    fhir: FhirClient
    store: Any = None  # service.store.Store, or None when no store is configured
    prefetch_templates: dict[str, str] = field(default_factory=dict)
    discovery: dict = field(default_factory=dict)
    verifier: Any = None  # service.auth.Verifier when issuers are configured
    suppression: Any = None  # service.suppression.Policy, from config and knowledge


def app_state() -> AppState:
    return current_app.extensions["baclofen_cds"]
