"""Pure: events and reminders as the rows ``list`` and ``plan`` print, in JSON or as text."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Any

from eventwatch import wording

if TYPE_CHECKING:
    from eventwatch.dispatch import Outcome
    from eventwatch.models import Event
    from eventwatch.policy import Reminder


def event_row(event: Event) -> dict[str, Any]:
    """An event as JSON: all-day dates with ``end`` inclusive, date-times with their offset."""
    if event.all_day:
        start, end = event.first_day.isoformat(), event.last_day.isoformat()
    else:
        start, end = event.start.isoformat(), event.end.isoformat()
    return {
        "uid": event.uid,
        "calendar": event.calendar,
        "id": event.id,
        "title": event.title,
        "start": start,
        "end": end,
        "all_day": event.all_day,
        "timezone": event.timezone,
        "location": event.location,
        "categories": list(event.categories),
        "status": event.status.value,
    }


NOT_IN_LEDGER = "unplanned"
"""The status of a reminder the daemon has not taken into its ledger yet."""


def reminder_row(reminder: Reminder, status: str | None = None) -> dict[str, Any]:
    """A reminder as JSON: ``due`` in UTC ending in ``Z``, ``due_local`` in the event's zone."""
    return {
        "event_uid": reminder.event.uid,
        "title": reminder.event.title,
        "recipient": reminder.recipient.address,
        "offset": str(reminder.offset),
        "due": f"{reminder.due.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        "due_local": reminder.due_local.isoformat(),
        "status": status or NOT_IN_LEDGER,
    }


def event_line(event: Event) -> str:
    """An event as one line of text."""
    status = wording.status(event)
    mark = f" [{status}]" if status else ""
    name = f"{event.calendar}/{event.id}"
    when = wording.when_numeric(event)
    return f"{when} {event.timezone}  {name}  {event.title}{wording.place_after(event)}{mark}"


def reminder_line(reminder: Reminder, status: str | None = None) -> str:
    """A reminder as one line of text: due in UTC and on the event's clock, and its status."""
    due = reminder.due.astimezone(UTC)
    local = reminder.due_local
    return (
        f"{due:%Y-%m-%d %H:%M}Z ({local:%Y-%m-%d %H:%M} {reminder.event.timezone})  "
        f"{reminder.offset!s:>5} before  {status or NOT_IN_LEDGER:<9}  "
        f"{reminder.recipient.address}  {reminder.event.title}"
    )


def outcome_line(outcome: Outcome) -> str:
    """What one pass did with one reminder, as a line of the simulated timeline."""
    row = outcome.row
    return (
        f"{outcome.at.astimezone(UTC):%Y-%m-%d %H:%M}Z  {outcome.result:<7}  {row.label:>5}  "
        f"{row.recipient}  {row.event_uid}  {outcome.detail}"
    )
