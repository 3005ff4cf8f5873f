"""Validation errors as messages a person can act on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from eventwatch import calendars, problems, tomlfile
from eventwatch.errors import CalendarError
from eventwatch.models import Calendar
from eventwatch.settings import Settings

if TYPE_CHECKING:
    from pathlib import Path


def test_field_path_reads_like_the_file() -> None:
    """Indices in brackets, keys joined by dots."""
    assert (
        problems.field_path(("events", 1, "participants", 0, "name"))
        == "events[1].participants[0].name"
    )
    assert problems.field_path(()) == ""


def test_allowed_keys_walk_nested_records() -> None:
    """The keys offered are those of the record at the location, as files spell them."""
    assert problems.allowed_keys(Calendar, ("events", 0, "sources", 0)) == [
        "publisher", "title", "published", "url",
    ]  # fmt: skip
    assert "from" in problems.allowed_keys(Settings, ("mail",))
    assert "id" not in problems.allowed_keys(Calendar, ())  # derived from the file name


def test_input_is_shown_only_when_asked() -> None:
    """Settings errors leave the offending value out; calendar errors include it."""
    with pytest.raises(ValidationError) as exc:
        Calendar.model_validate({"id": "c", "name": 5, "timezone": "UTC"})

    def where(loc: problems.Loc) -> tuple[str, int | None]:
        return "f.toml", len(loc)

    shown = problems.problems(exc.value, Calendar, where)
    hidden = problems.problems(exc.value, Calendar, where, show_input=False)
    assert [str(p) for p in shown] == ["f.toml:1: name: Input should be a valid string, got 5"]
    assert [str(p) for p in hidden] == ["f.toml:1: name: Input should be a valid string"]


def test_keys_toml_would_quote_are_quoted_on_one_line() -> None:
    """A key that is not bare is quoted, with what cannot be printed escaped."""
    assert problems.field_path(("events", 0, "Start Time")) == 'events[0]."Start Time"'
    assert problems.field_path(('say "hi"\n',)) == '"say \\"hi\\"\\n"'


@pytest.mark.parametrize("key", ["Name", "0", "start time", "événement", "", "a\nb"])
def test_unknown_key_of_any_spelling_is_named(key: str) -> None:
    """An unknown key is reported as typed, whatever it looks like (``Name`` used to crash)."""
    with pytest.raises(ValidationError) as exc:
        Calendar.model_validate({"id": "c", "name": "N", "timezone": "UTC", key: 1})

    def where(_loc: problems.Loc) -> tuple[str, int | None]:
        return "f.toml", None

    (problem,) = problems.problems(exc.value, Calendar, where)
    assert problem.field == problems.field_path((key,))
    assert problem.message.startswith("unknown key")
    assert "\n" not in str(problem)


def test_annotation_at_follows_records_and_lists() -> None:
    """The type at a location is found through nested records, aliases and list items."""
    assert problems.annotation_at(Settings, ("smtp",)).__name__ == "SmtpSettings"
    assert problems.annotation_at(Settings, ("server", "port")) is int
    assert "tuple" in str(problems.annotation_at(Settings, ("reminders", "recipients")))
    assert problems.annotation_at(Settings, ("reminders", "recipients", 0, "address")) is not None
    assert problems.annotation_at(Settings, ("mail", "from")) is not None
    assert problems.annotation_at(Settings, ("server", "port", "x")) is None
    assert problems.annotation_at(Settings, ("nothing",)) is None


def test_a_long_bad_value_is_cut_short_in_its_message(tmp_path: Path) -> None:
    """A megabyte of bad value is named by its ends and its length, not repeated whole."""
    path = tmp_path / "long.toml"
    path.write_text(
        f'name = "Long"\ntimezone = "UTC"\n[[events]]\nid = "e"\ntitle = "E"\n'
        f'start = 2026-07-07\nstatus = "{"x" * 1_000_000}"\n',
        encoding="utf-8",
    )
    with pytest.raises(CalendarError) as caught:
        calendars.parse(tomlfile.read(path))
    (problem,) = caught.value.problems
    assert len(str(problem)) < 400
    assert "(1,000,002 characters)" in str(problem)
