"""Log lines for the journal: one event a line, a level, the component and key=value fields."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import SecretStr

from eventwatch import logs

from .helpers import Running

if TYPE_CHECKING:
    from collections.abc import Iterator

log = logs.get("test")


@contextlib.contextmanager
def configured(level: str = "info", fmt: logs.Format = "text") -> Iterator[None]:
    """``logs.configure`` for the length of a block; what it changed is put back after.

    Inside the test itself, so that pytest's own capturing handlers are the ones put back.
    """
    root = logging.getLogger()
    access = logging.getLogger("uvicorn.access")
    scheduler = logging.getLogger("apscheduler")
    saved = (root.handlers[:], root.level, access.disabled, scheduler.level)
    logs.configure(level, fmt)
    try:
        yield
    finally:
        root.handlers[:], root.level, access.disabled, scheduler.level = saved


def logged(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What was logged to stderr since the last call, a line each."""
    return capsys.readouterr().err.splitlines()


def test_a_text_line_is_level_component_event_and_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``LEVEL component event key=value ...`` in the order the fields were given."""
    with configured():
        log.info("reminder sent", key="k1", to="a@example.org", attempt=2)
    assert logged(capsys) == ["INFO test reminder sent key=k1 to=a@example.org attempt=2"]


def test_a_value_with_spaces_quotes_or_equals_is_quoted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A value that would break the key=value split is written as a JSON string."""
    with configured():
        log.info("reload failed", error='bad "x" here', pair="a=b", empty="")
    assert logged(capsys) == [
        'INFO test reload failed error="bad \\"x\\" here" pair="a=b" empty=""'
    ]


def test_none_and_booleans_read_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    """None, True and False are written null, true and false; numbers bare."""
    with configured():
        log.info("state", due=None, ok=True, late=False, seconds=1.5)
    assert logged(capsys) == ["INFO test state due=null ok=true late=false seconds=1.5"]


def test_a_line_break_in_a_value_stays_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Text with line breaks is escaped, so that one event is one line of the journal."""
    with configured():
        log.warning("notice", detail="first\nsecond\r\nthird")
    assert logged(capsys) == ['WARNING test notice detail="first\\nsecond\\r\\nthird"']


def test_a_traceback_is_folded_onto_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    """An exception logged with its traceback adds one ``exception`` field, not more lines."""
    with configured():
        try:
            raise ValueError("boom")  # noqa: TRY301 - a traceback to log
        except ValueError:
            logging.getLogger("eventwatch.test").exception("loop failed")
    (line,) = logged(capsys)
    assert line.startswith('ERROR test loop failed exception="Traceback')
    assert "ValueError: boom" in line


def test_below_the_level_nothing_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    """At level warning, info and debug lines are dropped; the level's name is in any case."""
    with configured("WARNING"):
        log.debug("detail")
        log.info("happened")
        log.error("needs an admin")
    assert logged(capsys) == ["ERROR test needs an admin"]


def test_debug_level_writes_debug_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """At level debug, debug lines are written too."""
    with configured("debug"):
        log.debug("detail", n=1)
    assert logged(capsys) == ["DEBUG test detail n=1"]


def test_json_mode_writes_one_object_a_line(capsys: pytest.CaptureFixture[str]) -> None:
    """In JSON each line is an object with the level, component, event and the fields."""
    with configured(fmt="json"):
        log.info("reminder sent", key="k1", attempt=2)
        log.warning("retry", after=None)
    assert [json.loads(line) for line in logged(capsys)] == [
        {"level": "info", "component": "test", "event": "reminder sent", "key": "k1", "attempt": 2},
        {"level": "warning", "component": "test", "event": "retry", "after": None},
    ]


def test_json_values_that_are_no_json_type_become_strings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A path or another object is written as its text rather than failing the line."""
    with configured(fmt="json"):
        log.info("loaded", calendars_dir=Path("/srv/calendars"))
    (line,) = logged(capsys)
    assert json.loads(line)["calendars_dir"] == "/srv/calendars"


def test_a_field_cannot_replace_the_level_component_or_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In JSON, fields named level, component or event keep the record's own, and are kept."""
    with configured(fmt="json"):
        log.info("real", level="fake", component="fake", event="uid@eventwatch", count=2)
    (line,) = logged(capsys)
    assert json.loads(line) == {
        "level": "info",
        "component": "test",
        "event": "real",
        "count": 2,
        "fields": {"level": "fake", "component": "fake", "event": "uid@eventwatch"},
    }


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_secret_field_shows_masked(capsys: pytest.CaptureFixture[str], fmt: logs.Format) -> None:
    """A SecretStr passed by mistake is written as its mask, never its value, in either format."""
    with configured(fmt=fmt):
        log.info("login", password=SecretStr("s3cret-Pa55"))
    (line,) = logged(capsys)
    assert "s3cret-Pa55" not in line
    assert "**********" in line


def test_uvicorns_access_log_is_silenced(capsys: pytest.CaptureFixture[str]) -> None:
    """A line per feed poll would drown the journal: uvicorn's access log writes nothing."""
    with configured():
        logging.getLogger("uvicorn.access").info("GET /feeds/all.ics 200")
    assert logged(capsys) == []


def test_apscheduler_speaks_only_from_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """APScheduler's line per re-armed job is dropped; its warnings are kept."""
    with configured("debug"):
        logging.getLogger("apscheduler.scheduler").info("Added job")
        logging.getLogger("apscheduler.scheduler").warning("Run time was missed")
    assert logged(capsys) == ["WARNING apscheduler.scheduler Run time was missed"]


def test_json_logs_one_object_a_line(root: Path) -> None:
    """[log] format = "json": every line of the daemon's log is a JSON object with a level."""
    running = Running(root, {"EVENTWATCH_LOG__FORMAT": "json", "EVENTWATCH_LOG__LEVEL": "INFO"})
    code, log = running.stop()
    assert code == 0
    lines = [json.loads(line) for line in log.splitlines()]
    assert {"level", "component", "event"} <= set(lines[0])
    assert any(line["event"] == "ready" and "address" in line for line in lines)


def test_a_wake_skipped_while_one_runs_is_not_logged(capsys: pytest.CaptureFixture[str]) -> None:
    """APScheduler's warning that a wake was skipped as one still runs is dropped; others kept."""
    scheduler = logging.getLogger("apscheduler.scheduler")
    with configured():
        scheduler.warning(
            'Execution of job "Reminders.wake" skipped: maximum number of running instances '
            "reached (1)"
        )
        scheduler.warning("Run time was missed")
    assert logged(capsys) == ["WARNING apscheduler.scheduler Run time was missed"]
