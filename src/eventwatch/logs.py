"""Log output for the journal: stderr, one event a line, a level, the component, key=value.

Components log an event name and fields (``log.info("reminder sent", key=..., to=...)``);
the formatter writes them as text (``INFO dispatch reminder sent key="..." to=a@b``) or as
one JSON object a line. The journal adds the time, so neither format repeats it. Callers
pass no secrets and no message bodies; fields are what an admin needs to find a reminder.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, Literal

Format = Literal["text", "json"]

_PREFIX = "eventwatch."


def _component(record: logging.LogRecord) -> str:
    name = record.name
    return name.removeprefix(_PREFIX)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


def _text_value(value: object) -> str:
    """A value as it reads best in a key=value line: bare when it can be, quoted when not."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if text and all(c.isprintable() and c not in ' "=' for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``LEVEL component event key=value ...``, one line."""

    def format(self, record: logging.LogRecord) -> str:
        """One line; an exception's traceback, if any, folded onto it as a field."""
        fields = _fields(record)
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        parts = [record.levelname, _component(record), record.getMessage()]
        parts += [f"{k}={_text_value(v)}" for k, v in fields.items()]
        return " ".join(parts).replace("\n", "\\n")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: level, component, event and the fields.

    A field named like one of those three (``event=`` an event's uid) goes under ``fields``.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON; values that are not JSON types become strings."""
        made: dict[str, Any] = {
            "level": record.levelname.lower(),
            "component": _component(record),
            "event": record.getMessage(),
        }
        clashing = {}
        for key, value in _fields(record).items():
            if key in made:  # such as event=UID: kept, under "fields", never overwriting
                clashing[key] = value
            else:
                made[key] = value
        if clashing:
            made["fields"] = clashing
        if record.exc_info:
            made["exception"] = self.formatException(record.exc_info)
        return json.dumps(made, default=str, ensure_ascii=False)


def configure(level: str = "info", fmt: Format = "text") -> None:
    """Send eventwatch's and uvicorn's records to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's error log is ours; its access log would be one line per feed poll.
    logging.getLogger("uvicorn.access").disabled = True
    # APScheduler reports every job it adds at info: one line per re-arm is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    scheduler = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _OneWakeAtATime) for f in scheduler.filters):
        scheduler.addFilter(_OneWakeAtATime())


class _OneWakeAtATime(logging.Filter):
    """Drop APScheduler's warning that a wake was skipped while one still ran.

    A wake runs one at a time on purpose (``max_instances=1``), and a wake that finds one
    running is not needed: that one goes on until nothing is due. During a long batch the
    poll would otherwise log this every few seconds.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Keep every record but that one."""
        return "maximum number of running instances reached" not in record.getMessage()


class Log:
    """The logger of one component: an event name and key=value fields per call."""

    def __init__(self, component: str) -> None:
        """Log as ``eventwatch.COMPONENT``."""
        self.logger = logging.getLogger(_PREFIX + component)

    def _log(self, level: int, event: str, fields: dict[str, object]) -> None:
        if self.logger.isEnabledFor(level):
            self.logger.log(level, event, extra={"fields": fields}, stacklevel=3)

    def debug(self, event: str, /, **fields: object) -> None:
        """Detail for finding a fault."""
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, /, **fields: object) -> None:
        """Something an admin may want to know happened."""
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, /, **fields: object) -> None:
        """Something went wrong and eventwatch carried on."""
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, /, **fields: object) -> None:
        """Something went wrong that needs an admin."""
        self._log(logging.ERROR, event, fields)


def get(component: str) -> Log:
    """The logger of one component, named ``eventwatch.COMPONENT``."""
    return Log(component)
