"""The WSGI app as a module attribute, for servers that import it (`service.wsgi:app`).

`serve` passes its configuration (file, environment and command-line overrides already
merged) to the workers as JSON in BACLOFEN_CDS_SERVE_CONFIG; without it the configuration
is loaded as usual (BACLOFEN_CDS_CONFIG and BACLOFEN_CDS_* variables).
"""
from __future__ import annotations

import os

from .app import create_app
from .config import Config

SERVE_CONFIG_ENV = "BACLOFEN_CDS_SERVE_CONFIG"

_serialized = os.environ.get(SERVE_CONFIG_ENV)
app = create_app(Config.model_validate_json(_serialized) if _serialized else None)
