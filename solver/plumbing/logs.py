"""Structured logs for the services: one JSON object per line, with a level and an ISO time."""

from __future__ import annotations

import logging
import sys

import structlog


def configure_json_logs(level: int = logging.INFO) -> None:
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info,  # the cause, not exc_info=true
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    # python-binance logs through the standard library; keep its errors, as JSON-free text
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
