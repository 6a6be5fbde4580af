"""Structured logs: one JSON object per line for services and files, readable lines with
colours on a terminal; a level and an ISO time either way."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TextIO

import structlog

LEVELS = ("debug", "info", "warning", "error")


def configure_json_logs(level: int = logging.INFO) -> None:
    """JSON lines on stderr (the mocks and the FIX client)."""
    configure_logs(level, as_json=True)


def configure_logs(level: int = logging.INFO, file: Path | None = None,
                   as_json: bool | None = None) -> None:
    """Logs at ``level`` and above to ``file`` (appended) or stderr; JSON unless they go to a
    terminal (``as_json`` decides if given)."""
    stream: TextIO = sys.stderr if file is None else file.open("a", encoding="utf-8",
                                                                 buffering=1)
    if as_json is None:
        as_json = not stream.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info,  # the cause, not exc_info=true
                    renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    # python-binance logs through the standard library; keep its errors, as plain text
    logging.basicConfig(level=max(level, logging.WARNING), stream=stream, force=True)
