"""Pure: calendars and a reminder policy in, the reminders they call for out, with stable keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from eventwatch.models import (
    Calendar,
    Event,
    Offset,
    Recipient,
    ReminderPolicy,
    Status,
    in_start_order,
)

FALLBACK_ALL_DAY_AT = time(9, 0)
"""When an all-day event's reminders are anchored if no level of policy says."""


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder: an event, a recipient, how long before, and the instant it is due.

    A plain slotted record, not a pydantic model: it is derived from validated records, never
    read from a file, and a daemon holds one per pending reminder (100,000 of them as pydantic
    models cost about 1 KB each; as this, about a quarter of that).

    ``key`` is its stable identity: the event's uid and start, the offset and the recipient. A
    moved event gets new keys, so its old reminders can be told apart from the new ones.
    """

    event: Event
    recipient: Recipient
    offset: Offset
    starts: datetime
    due: datetime
    key: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        """Compute the key once; it is read for every comparison with the ledger."""
        start = self.starts.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        key = f"{self.event.uid}|{start}|{self.offset}|{self.recipient.address.lower()}"
        object.__setattr__(self, "key", key)

    @property
    def due_local(self) -> datetime:
        """The due instant on the event's local clock."""
        return self.due.astimezone(self.event.zone)


def _merge(*groups: tuple[Recipient, ...]) -> list[Recipient]:
    """Recipients of every level, each address once (the most general level's entry wins)."""
    seen: dict[str, Recipient] = {}
    for group in groups:
        for recipient in group:
            seen.setdefault(recipient.address.lower(), recipient)
    return list(seen.values())


def _timing(
    event: Event,
    calendar: ReminderPolicy,
    defaults: ReminderPolicy,
) -> tuple[tuple[Offset, ...], time]:
    """The offsets and all-day anchor in force for ``event``: its own, else its calendar's."""
    levels = (event.reminders, calendar, defaults)
    offsets = next((p.offsets for p in levels if p.offsets is not None), ())
    anchor = next((p.all_day_at for p in levels if p.all_day_at is not None), FALLBACK_ALL_DAY_AT)
    return offsets, anchor


def triggers(
    event: Event, calendar: ReminderPolicy, defaults: ReminderPolicy
) -> tuple[timedelta, ...]:
    """The reminders' offsets as alarm triggers relative to the event's start in a feed.

    Whole days stay nominal days, as iCalendar durations count them; an all-day event's
    trigger counts from its midnight, so it fires at the anchor time like the e-mail does.
    """
    if event.status is Status.CANCELLED:
        return ()
    offsets, anchor = _timing(event, calendar, defaults)
    since_midnight = timedelta(hours=anchor.hour, minutes=anchor.minute, seconds=anchor.second)
    shift = since_midnight if event.all_day else timedelta(0)
    return tuple(shift - timedelta(days=o.days, seconds=o.seconds) for o in offsets)


def for_event(event: Event, calendar: ReminderPolicy, defaults: ReminderPolicy) -> list[Reminder]:
    """The reminders one event calls for under its calendar's policy and the defaults."""
    if event.status is Status.CANCELLED:
        return []
    offsets, anchor = _timing(event, calendar, defaults)
    starts = event.begins(anchor)
    return [
        Reminder(
            event=event,
            recipient=recipient,
            offset=offset,
            starts=starts,
            due=offset.before(starts),
        )
        for offset in offsets
        for recipient in _merge(
            defaults.recipients, calendar.recipients, event.reminders.recipients
        )
    ]


def reminders(calendars: tuple[Calendar, ...], defaults: ReminderPolicy) -> list[Reminder]:
    """Every reminder the calendars call for, past and future, in due order."""
    policies = {c.id: c.reminders for c in calendars}
    found = [
        reminder
        for event in in_start_order(calendars)
        for reminder in for_event(event, policies[event.calendar], defaults)
    ]
    return sorted(found, key=lambda r: (r.due, r.key))


def plan(
    calendars: tuple[Calendar, ...],
    defaults: ReminderPolicy,
    at: datetime,
    until: datetime | None = None,
) -> list[Reminder]:
    """The reminders due at or after ``at`` and, if given, before ``until``, in due order."""
    return [
        r
        for r in reminders(calendars, defaults)
        if r.due >= at and (until is None or r.due < until)
    ]
