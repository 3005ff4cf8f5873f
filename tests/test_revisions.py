"""SEQUENCE rises for time, place, title or status; LAST-MODIFIED follows any change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from eventwatch.models import Event
from eventwatch.revisions import revise

FIRST = datetime(2026, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)
LATER = datetime(2026, 1, 2, 9, 0, tzinfo=UTC)


def event(**fields: Any) -> Event:  # noqa: ANN401
    """An all-day event with the given fields over small defaults."""
    base = {
        "calendar": "cal",
        "id": "e",
        "title": "E",
        "timezone": "Europe/Brussels",
        "start": date(2026, 7, 7),
        "location": "Ankara",
    }
    return Event.model_validate(base | fields)


def test_first_revision_is_sequence_zero_to_the_second() -> None:
    """A new event starts at SEQUENCE 0, stamped now without microseconds."""
    first = revise(event(), None, FIRST)
    assert (first.sequence, first.modified) == (0, FIRST.replace(microsecond=0))


def test_nothing_changed_keeps_the_revision() -> None:
    """The same event later gives back the very same revision."""
    first = revise(event(), None, FIRST)
    assert revise(event(), first, LATER) is first


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Renamed"},
        {"location": "Istanbul"},
        {"start": date(2026, 7, 8)},
        {"end": date(2026, 7, 9)},
        {"timezone": "Europe/Istanbul"},
        {"status": "cancelled"},
    ],
)
def test_major_change_raises_sequence(change: dict[str, Any]) -> None:
    """Time, place, title and status changes bump SEQUENCE and LAST-MODIFIED."""
    first = revise(event(), None, FIRST)
    second = revise(event(**change), first, LATER)
    assert (second.sequence, second.modified) == (1, LATER)


@pytest.mark.parametrize(
    "change",
    [
        {"description": "More detail"},
        {"categories": ["summit"]},
        {"url": "https://example.org/"},
        {"participants": [{"name": "Mark Rutte"}]},
    ],
)
def test_minor_change_keeps_sequence(change: dict[str, Any]) -> None:
    """Other content changes move LAST-MODIFIED only."""
    first = revise(event(), None, FIRST)
    second = revise(event(**change), first, LATER)
    assert (second.sequence, second.modified) == (0, LATER)
    assert second.content != first.content
