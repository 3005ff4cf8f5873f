"""Log output for the journal: stderr, one event a line, a level, the component, key=value."""

from __future__ import annotations

import logging
import sys


def configure(level: str = "info") -> None:
    """Send eventwatch's and uvicorn's records to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's error log is ours; its access log would be one line per feed poll.
    logging.getLogger("uvicorn.access").disabled = True
    # APScheduler reports every job it adds at info: one line per re-arm is noise.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def get(component: str) -> logging.Logger:
    """The logger of one component, named ``eventwatch.COMPONENT``."""
    return logging.getLogger(f"eventwatch.{component}")
