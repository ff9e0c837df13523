"""Structured JSON logs; anything shaped like a token is redacted before it is written."""

from __future__ import annotations

import logging
import re
from typing import Any

TOKEN_LIKE = re.compile(r"(tally_[0-9a-f]{16}_)[A-Za-z0-9_-]+|(Bearer\s+)\S+")


class RedactTokens(logging.Filter):
    """Replace token secrets in messages and arguments with `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def redact(text: str) -> str:
    """Keep a token's public id (useful in logs), drop its secret."""
    return TOKEN_LIKE.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """dictConfig for the app and uvicorn: one JSON object per line on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactTokens}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "": {"handlers": ["stderr"], "level": level},
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
        },
    }
