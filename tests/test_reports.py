"""JSON rows and text lines for events and reminders."""

from __future__ import annotations

from datetime import date, datetime

from eventwatch import policy, reports
from eventwatch.models import Calendar, ReminderPolicy


def calendar() -> Calendar:
    """A Brussels calendar with one timed and one cancelled all-day event."""
    return Calendar.model_validate(
        {
            "id": "cal",
            "name": "Cal",
            "timezone": "Europe/Brussels",
            "reminders": {"offsets": ["PT2H"], "recipients": [{"address": "ops@example.org"}]},
            "events": [
                {
                    "id": "talk",
                    "title": "Talk",
                    "start": datetime(2026, 10, 25, 10, 0),
                    "end": datetime(2026, 10, 25, 11, 30),
                    "categories": ["x"],
                },
                {
                    "id": "off",
                    "title": "Off",
                    "start": date(2026, 12, 31),
                    "end": date(2027, 1, 1),
                    "status": "cancelled",
                },
            ],
        },
    )


def test_timed_event_row_has_offsets() -> None:
    """A timed event's start and end carry the offset of the event's zone on that day."""
    row = reports.event_row(calendar().events[0])
    assert (row["start"], row["end"], row["all_day"]) == (
        "2026-10-25T10:00:00+01:00",
        "2026-10-25T11:30:00+01:00",
        False,
    )


def test_all_day_row_ends_on_the_last_day() -> None:
    """An all-day row's end is the inclusive last day, as the file wrote it."""
    row = reports.event_row(calendar().events[1])
    assert (row["start"], row["end"], row["status"]) == ("2026-12-31", "2027-01-01", "cancelled")


def test_reminder_row_due_in_utc_and_local() -> None:
    """``due`` ends in Z; ``due_local`` is on the event's clock."""
    (reminder,) = policy.reminders((calendar(),), ReminderPolicy())
    assert reports.reminder_row(reminder) == {
        "event_uid": "cal/talk@eventwatch",
        "title": "Talk",
        "recipient": "ops@example.org",
        "offset": "PT2H",
        "due": "2026-10-25T07:00:00Z",
        "due_local": "2026-10-25T08:00:00+01:00",
        "status": "unplanned",
    }


def test_event_lines() -> None:
    """Text lines show the time range, zone, name, title and a non-confirmed status."""
    timed, cancelled = (reports.event_line(e) for e in calendar().events)
    assert timed == "2026-10-25 10:00-11:30 Europe/Brussels  cal/talk  Talk"
    assert (
        cancelled == "2026-12-31 to 2027-01-01 (all day) Europe/Brussels  cal/off  Off [cancelled]"
    )
