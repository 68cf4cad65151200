"""Structured log lines for the service: key=value pairs or JSON objects."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final

# LogRecord attributes that every record has; anything else came through `extra`.
_STANDARD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)
LOG_FORMATS: Final = ("kv", "json")
# Extra attributes of other libraries' records that repeat the message.
_DROPPED_EXTRA: Final = frozenset({"color_message"})
# APScheduler logs each run of each job at info, which the lease renewal alone
# turns into a line every few seconds.
_QUIET_LOGGERS: Final = ("apscheduler.executors", "apscheduler.scheduler")


def describe_error(error: BaseException) -> str:
    """Return an error's type and driver message without SQL parameters.

    SQLAlchemy errors carry the statement and its parameters, which hold request
    data, so only the driver's own message is kept.
    """
    original = getattr(error, "orig", None)
    return f"{type(error).__name__}: {original if original is not None else error}"


class KeyValueFormatter(logging.Formatter):
    """Format records as `ts=... level=... logger=... msg="..."` plus extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = [
            ("ts", _timestamp(record)),
            ("level", record.levelname.lower()),
            ("logger", record.name),
            ("msg", record.getMessage()),
            *_extra(record).items(),
        ]
        line = " ".join(f"{key}={_quote(value)}" for key, value in pairs)
        if record.exc_info:
            line += " exc=" + _quote(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """Format records as one JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_extra(record),
        }
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


# The arguments of the last `configure_logging` call, which child processes repeat.
_configured: tuple[int, str] | None = None


def logging_configuration() -> tuple[int, str] | None:
    """Return the (level, format) last set by `configure_logging`, or None."""
    return _configured


def configure_logging(*, level: int = logging.INFO, log_format: str = "kv") -> None:
    """Send the service's logs to stderr as structured lines.

    Raises:
        ValueError: the format is not "kv" or "json".
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(
            f"Log format {log_format!r} is unknown; use one of "
            f"{', '.join(LOG_FORMATS)}."
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter() if log_format == "kv" else JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    global _configured
    _configured = (level, log_format)


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(
        timespec="milliseconds"
    )


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD_ATTRIBUTES
        and key not in _DROPPED_EXTRA
        and not key.startswith("_")
    }


def _quote(value: object) -> str:
    text = str(value)
    if text and not any(ch in text for ch in ' "=\n\t\\'):
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'
