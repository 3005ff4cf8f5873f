"""Validation errors as messages a person can act on."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from eventwatch import problems
from eventwatch.models import Calendar
from eventwatch.settings import Settings


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
