"""What ``scimledger serve`` logs, and how (README, "Operating it").

One record per line on stderr: text by default, JSON objects with ``SCIMLEDGER_LOG_FORMAT=json`` (every
field a record carries, e.g. the access line's method, route, status, duration_ms, request_id, workspace,
token or admin_key, becomes a key). ``SCIMLEDGER_LOG_LEVEL`` (default ``info``) applies to every logger;
``warning`` silences the access lines.

Tracebacks appear only for real server errors (500: ``api/errors.py`` logs one with its traceback). uvicorn
then logs the same exception again as "Exception in ASGI application": ``OneTraceback`` keeps that line
without repeating the traceback.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scimledger.config import ConfigError

LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


@dataclass(frozen=True)
class LogSettings:
    """``SCIMLEDGER_LOG_FORMAT`` (``text`` | ``json``) and ``SCIMLEDGER_LOG_LEVEL``."""

    format: str = "text"
    level: str = "info"

    @classmethod
    def from_env(cls) -> LogSettings:
        fmt = os.environ.get("SCIMLEDGER_LOG_FORMAT", "").strip().lower() or "text"
        level = os.environ.get("SCIMLEDGER_LOG_LEVEL", "").strip().lower() or "info"
        if fmt not in FORMATS:
            raise ConfigError("SCIMLEDGER_LOG_FORMAT", f"{fmt!r}: use one of {', '.join(FORMATS)}")
        if level not in LEVELS:
            raise ConfigError("SCIMLEDGER_LOG_LEVEL", f"{level!r}: use one of {', '.join(LEVELS)}")
        return cls(fmt, level)

    def dict_config(self) -> dict[str, Any]:
        """A ``logging.config.dictConfig`` document (uvicorn's ``log_config``; each worker applies it)."""
        formatter: dict[str, Any] = (
            {"()": f"{__name__}.JsonFormatter"} if self.format == "json" else {"format": TEXT_FORMAT}
        )
        level = self.level.upper()
        return {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"scimledger": formatter},
            "filters": {"one_traceback": {"()": f"{__name__}.OneTraceback"}},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stderr",
                    "formatter": "scimledger",
                }
            },
            "loggers": {
                "uvicorn": {"level": level},
                "uvicorn.error": {"level": level, "filters": ["one_traceback"]},
                "uvicorn.access": {"handlers": [], "propagate": False},  # ours is scimledger.access
            },
            "root": {"handlers": ["stderr"], "level": level},
        }


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, RFC 3339), level, logger, message, the record's extra fields,
    and ``exception`` (the traceback) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(
            (k, v) for k, v in vars(record).items() if k not in _RECORD_FIELDS and not k.startswith("_")
        )
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class OneTraceback(logging.Filter):
    """uvicorn's "Exception in ASGI application" repeats a traceback our error handler already logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Exception in ASGI application"):
            error = record.exc_info[1]
            record.msg = f"Exception in ASGI application ({type(error).__name__}; traceback logged above)"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True
