"""GET /cds-services (generated from the declarations) and GET /healthz."""
from flask import Blueprint, jsonify

from .state import app_state

blueprint = Blueprint("discovery", __name__)


@blueprint.get("/cds-services")
def discovery():
    return jsonify(app_state().discovery)


@blueprint.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})
