"""The exception tree: as drawn in errors.py, with its exit codes and self-made messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from eventwatch import errors
from eventwatch.errors import (
    CalendarError,
    DeliveryError,
    EventwatchError,
    InvalidField,
    InvalidInputError,
    MessageError,
    OperationError,
    Problem,
    SettingsError,
    StateError,
)

_NAME = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w*)(?:\((?P<base>\w+)\))?(?:\s|$)")


def drawn_tree() -> dict[str, str]:
    """Each class drawn in errors.py's docstring, with the name of its parent in the drawing."""
    assert errors.__doc__ is not None
    parents: dict[str, str] = {}
    by_column: dict[int, str] = {}
    for line in errors.__doc__.split("::", 1)[1].splitlines():
        if line and not line.startswith("    "):
            break  # the first line of prose after the indented drawing
        found = _NAME.match(line)
        if found is None:
            continue  # a description carried on to a second line
        column = len(found["indent"])
        name = found["name"]
        parents[name] = found["base"] or by_column.get(column - 4, "Exception")
        by_column[column] = name
    return parents


def defined_errors() -> dict[str, str]:
    """Each exception class errors.py defines, with the name of its base class."""
    return {
        name: value.__bases__[0].__name__
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }


def test_the_drawing_names_every_error_class() -> None:
    """Every exception class in errors.py is in the tree drawn in its docstring, and no other."""
    assert sorted(drawn_tree()) == sorted(defined_errors())


def test_the_drawing_shows_each_class_under_its_base() -> None:
    """Each drawn class hangs under the class it inherits from."""
    assert drawn_tree() == defined_errors()


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (EventwatchError, 1),
        (InvalidInputError, 2),
        (SettingsError, 2),
        (CalendarError, 2),
        (StateError, 2),
        (OperationError, 1),
        (DeliveryError, 1),
        (MessageError, 1),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else str(value),
)
def test_exit_code(error: type[EventwatchError], code: int) -> None:
    """Wrong input and an unusable state folder exit 2 (no restart helps); failed work exits 1."""
    assert error.exit_code == code


def test_a_problem_reads_source_line_field_and_message() -> None:
    """A problem prints as ``SOURCE:LINE: field: message``."""
    problem = Problem("calendars/nato-2026.toml", "events[1].timezone", "not a zone", line=14)
    assert str(problem) == "calendars/nato-2026.toml:14: events[1].timezone: not a zone"


def test_a_problem_leaves_out_what_is_unknown() -> None:
    """Without a line the colon and number go; without a field, the field goes."""
    assert str(Problem("EVENTWATCH_SMTP", "smtp.port", "not a number")) == (
        "EVENTWATCH_SMTP: smtp.port: not a number"
    )
    assert str(Problem("config/eventwatch.toml", "", "not TOML", line=3)) == (
        "config/eventwatch.toml:3: not TOML"
    )


def test_invalid_input_holds_every_problem_and_prints_one_a_line() -> None:
    """The message is every problem, one a line, in the order found."""
    problems = [Problem("a.toml", "x", "bad", 1), Problem("b.toml", "y", "worse", 2)]
    error = CalendarError(problems)
    assert error.problems == tuple(problems)
    assert str(error) == "a.toml:1: x: bad\nb.toml:2: y: worse"


def test_a_settings_error_can_name_the_calendars_folder() -> None:
    """Settings with problems still say where the calendars are, when they name a valid folder."""
    error = SettingsError([Problem("s.toml", "smtp.port", "bad")], Path("/srv/calendars"))
    assert error.calendars_dir == Path("/srv/calendars")
    assert SettingsError([]).calendars_dir is None


def test_a_delivery_error_is_deferred_or_rejected_by_default() -> None:
    """Without a reason, a permanent failure counts as rejected and any other as deferred."""
    assert DeliveryError("550 no such user", permanent=True).reason == "rejected"
    assert DeliveryError("451 try later", permanent=False).reason == "deferred"


def test_a_delivery_error_keeps_the_reply_and_a_given_reason() -> None:
    """The server's reply is the message, and an explicit reason is kept for the metrics."""
    error = DeliveryError("connection refused", permanent=False, reason="connection")
    assert (str(error), error.reply, error.reason) == (
        "connection refused",
        "connection refused",
        "connection",
    )
    assert not error.permanent


def test_an_invalid_field_is_a_value_error_pointing_below() -> None:
    """Pydantic only turns ValueErrors into errors; ``loc`` says which nested field it means."""
    error = InvalidField(("events", 3, "id"), "duplicate id")
    assert isinstance(error, ValueError)
    assert (error.loc, str(error)) == (("events", 3, "id"), "duplicate id")
