"""GET /admin/report (the override report as JSON, behind the admin Bearer token; off when
no token is configured) and GET /metrics (Prometheus)."""
from __future__ import annotations

import hmac
from datetime import date, datetime, time, timezone

from flask import Blueprint, Response, jsonify, request

from . import metrics
from .errors import ApiError, bad_request
from .feedback import in_utc
from .state import app_state
from .store.report import build_report, knowledge_reason_display

blueprint = Blueprint("admin", __name__)


@blueprint.get("/admin/report")
def override_report():
    state = app_state()
    _require_admin(state.config.admin.token)
    since = parse_since(request.args.get("since"), "since")
    state.store.flush()  # cards this process just issued belong in the report
    return jsonify(build_report(state.store.engine, since, knowledge_reason_display(state.knowledge)))


@blueprint.get("/metrics")
def prometheus_metrics():
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


def _require_admin(token: str) -> None:
    if not token:
        raise ApiError(404, "not found")
    supplied = request.headers.get("Authorization", "")
    scheme, _, credential = supplied.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode(), token.encode()):
        raise ApiError(401, "admin token required")


def parse_since(value: str | None, field: str) -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 date-time; None when absent."""
    if not value:
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), tzinfo=timezone.utc)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(field, "must be a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    return in_utc(moment, field) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
