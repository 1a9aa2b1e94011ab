"""JSON errors: every failure a client can cause is a 4xx with a body naming what is wrong."""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("baclofen_cds")


class ApiError(Exception):
    """A client error with an HTTP status and a message naming the offending field."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict:
        body = {"error": self.message}
        if self.field:
            body["field"] = self.field
        return body


def bad_request(field: str, message: str) -> ApiError:
    return ApiError(400, f"{field}: {message}", field)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(error: ApiError):
        return jsonify(error.body()), error.status

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        response = jsonify({"error": error.description or error.name})
        response.status_code = error.code or 500
        if error.code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        for name, value in (error.get_headers() or []):
            if name.lower() == "www-authenticate":
                response.headers[name] = value
        return response

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        # The traceback goes to the log (it holds no request data); the client gets none.
        log.exception("unexpected error", extra={"event": "internal_error"})
        return jsonify({"error": "internal error"}), 500
