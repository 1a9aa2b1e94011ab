"""Structured JSON logs, one object per line, keyed by hookInstance; never patient data or tokens."""
from __future__ import annotations

import functools
import json
import logging
import sys
import time

LOGGER_NAME = "baclofen_cds"
# Only these record attributes are written; anything else passed in `extra` is dropped,
# so a careless call cannot leak a token or a patient value into the log.
ALLOWED_FIELDS = (
    "event", "hook_instance", "service", "hook", "status", "duration_ms", "cards",
    "topics", "data_key", "reason", "fhir_host", "issuer", "kid", "path", "method",
    "feedback_items", "worker",
)

# Set by service.tracing when tracing is on: the current span's {"trace_id", "span_id"}.
trace_ids = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": _utc_second(int(record.created)),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for name in ALLOWED_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if trace_ids is not None:
            entry.update(trace_ids())
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)  # its ", " and ": " are what log searches expect


@functools.lru_cache(maxsize=4)
def _utc_second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def configure(level: int = logging.INFO) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = True  # lets pytest's caplog see records


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)
