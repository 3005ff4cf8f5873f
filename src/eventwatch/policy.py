"""Pure: every decision about a reminder, as functions of records, ledger rows and ``now``.

What is planned (offsets, recipients, the time an all-day event's reminders count from), what
happens to a reminder when its turn comes (sent, late, caught up or skipped), how a failed
send is retried, when a change notice is owed and to whom, and how the ledger follows a new
plan. The ledger, the dispatcher and the reminder service carry these decisions out; nothing
here reads a file, a clock or a database.

A reminder is due when it is pending and its next attempt (for a first attempt, its due
instant) has come: the ledger's claim selects exactly those rows, soonest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from eventwatch.models import Recipient, Timing, calendar_of
from eventwatch.models import Status as EventStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Mapping

    from eventwatch.models import Calendar, Event, Offset, ReminderPolicy

LATE_AFTER = timedelta(seconds=10)
"""A reminder sent later than this after its due instant says that it is late."""

FIRST_RETRY = timedelta(minutes=1)
"""The wait before the second attempt of a send the server refused for now."""

LAST_RETRY = timedelta(hours=1)
"""The longest wait between two attempts: the wait doubles from ``FIRST_RETRY`` up to this."""


class Status(StrEnum):
    """Where a reminder stands; ``sent`` rows are never changed again."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class Kind(StrEnum):
    """What a ledger row sends: a reminder ahead of an event, or a notice that it changed."""

    REMINDER = "reminder"
    CHANGED = "changed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Reminder:
    """One message owed: an event, a recipient, its kind and the instant it is due.

    A plain slotted record, not a pydantic model: it is derived from validated records, never
    read from a file, and a daemon holds one per pending reminder (100,000 of them as pydantic
    models cost about 1 KB each; as this, about a quarter of that).

    ``key`` is its stable identity. A reminder's is the event's uid and start, the offset and
    the recipient: a moved event gets new keys, so its old reminders can be told apart from
    the new ones. A notice's is the event's uid, its kind, the SEQUENCE it announces and the
    recipient: each change is announced once.
    """

    event: Event
    recipient: Recipient
    offset: Offset | None
    """How long before the start a reminder is due; None for a notice."""
    starts: datetime
    due: datetime
    kind: Kind = Kind.REMINDER
    sequence: int | None = None
    """The SEQUENCE a notice announces; None for a reminder."""
    key: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        """Compute the key once; it is read for every comparison with the ledger."""
        address = self.recipient.address.lower()
        if self.kind is Kind.REMINDER:
            start = self.starts.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            key = f"{self.event.uid}|{start}|{self.offset}|{address}"
        else:
            key = f"{self.event.uid}|{self.kind}|{self.sequence}|{address}"
        object.__setattr__(self, "key", key)

    @property
    def event_uid(self) -> str:
        """The uid of the event it is about."""
        return self.event.uid

    @property
    def address(self) -> str:
        """The recipient's address, as written."""
        return self.recipient.address

    @property
    def due_local(self) -> datetime:
        """The due instant on the event's local clock."""
        return self.due.astimezone(self.event.zone)


@dataclass(frozen=True, slots=True)
class Row:
    """One reminder or notice as the ledger holds it."""

    key: str
    event_uid: str
    recipient: str
    kind: Kind
    offset: str | None
    sequence: int | None
    due: datetime
    status: Status
    attempts: int
    next_attempt: datetime | None
    last_error: str | None
    message_id: str | None
    sent_at: datetime | None

    @property
    def label(self) -> str:
        """How logs and reports name what it sends: a reminder's offset, a notice's kind."""
        return str(self.kind) if self.offset is None else self.offset


# What is planned


def _merge(*groups: tuple[Recipient, ...]) -> list[Recipient]:
    """Recipients of every level, each address once (the most general level's entry wins)."""
    seen: dict[str, Recipient] = {}
    for group in groups:
        for recipient in group:
            seen.setdefault(recipient.address.lower(), recipient)
    return list(seen.values())


def for_event(event: Event, calendar: ReminderPolicy, defaults: ReminderPolicy) -> list[Reminder]:
    """The reminders one event calls for under its calendar's policy and the defaults.

    Each offset in force goes to every recipient of every level; a cancelled event has none.
    An all-day event's reminders count from ``all_day_at`` on its first day.
    """
    if event.status is EventStatus.CANCELLED:
        return []
    timing = Timing.of(event, calendar, defaults)
    starts = event.begins(timing.all_day_at)
    return [
        Reminder(
            event=event,
            recipient=recipient,
            offset=offset,
            starts=starts,
            due=offset.before(starts),
        )
        for offset in timing.offsets
        for recipient in _merge(
            defaults.recipients, calendar.recipients, event.reminders.recipients
        )
    ]


@dataclass
class Known:
    """The reminders each calendar called for last time, by calendar id.

    Kept while the calendar is the very same record and the defaults are equal: the
    daemon's reload hands back the records of unchanged files as they were, so planning
    follows what changed.
    """

    calendars: dict[str, tuple[Calendar, ReminderPolicy, list[Reminder]]] = field(
        default_factory=dict
    )


def reminders(
    calendars: tuple[Calendar, ...], defaults: ReminderPolicy, known: Known | None = None
) -> list[Reminder]:
    """Every reminder the calendars call for, past and future, in due order.

    Calendars ``known`` holds as they are keep the reminders planned for them then.
    """
    # In no particular order first: the keys are unique, so the sort decides it all.
    found: list[Reminder] = []
    planned: dict[str, tuple[Calendar, ReminderPolicy, list[Reminder]]] = {}
    for calendar in calendars:
        before = known.calendars.get(calendar.id) if known is not None else None
        if before is not None and before[0] is calendar and before[1] == defaults:
            mine = before[2]
        else:
            mine = [
                reminder
                for event in calendar.events
                for reminder in for_event(event, calendar.reminders, defaults)
            ]
        planned[calendar.id] = (calendar, defaults, mine)
        found.extend(mine)
    if known is not None:
        known.calendars = planned
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


# How the ledger follows a plan


class Standing(NamedTuple):
    """What the ledger holds of one row when a plan comes in (one per row: kept light)."""

    status: Status
    kind: Kind


@dataclass(frozen=True, slots=True)
class Changes:
    """What the ledger must change to follow a plan."""

    fresh: tuple[Reminder, ...]
    """Planned and not in the ledger: added as pending."""
    cancel: tuple[str, ...]
    """Pending reminders the plan no longer has (the event moved, was cancelled or removed)."""
    revive: tuple[str, ...]
    """Cancelled reminders the plan has again (the event moved back), not yet due."""


def reconcile(
    known: Mapping[str, Standing],
    planned: Iterable[Reminder],
    now: datetime,
    deferred: Collection[str] = (),
) -> Changes:
    """The changes that make the ledger ``known`` follow ``planned`` at ``now``.

    Sent, failed and skipped rows are never touched, and a pending notice stays pending
    whatever the plan says: it announces a change that happened. Nothing of a calendar in
    ``deferred`` is touched either: another instance holds a newer file of it.
    """
    wanted = {r.key: r for r in planned if r.event.calendar not in deferred}
    return Changes(
        fresh=tuple(r for key, r in wanted.items() if key not in known),
        cancel=tuple(
            key
            for key, row in known.items()
            if row.status is Status.PENDING
            and row.kind is Kind.REMINDER
            and key not in wanted
            and calendar_of(key) not in deferred
        ),
        revive=tuple(
            key
            for key, row in known.items()
            if row.status is Status.CANCELLED and key in wanted and wanted[key].due > now
        ),
    )


def follow(
    planned: Iterable[Reminder], deferred: Collection[str] = ()
) -> Callable[[Mapping[str, Standing], datetime], Changes]:
    """``reconcile`` with the plan given: what the ledger runs on what it holds, at its now."""
    kept, held = list(planned), frozenset(deferred)
    return lambda known, now: reconcile(known, kept, now, held)


# When a reminder's turn comes


@dataclass(frozen=True, slots=True)
class Send:
    """Send it now; ``late`` says so in the message."""

    late: bool


@dataclass(frozen=True, slots=True)
class Skip:
    """Do not send it, on purpose, for the reason given."""

    why: str


@dataclass(frozen=True, slots=True)
class Fail:
    """Give it up: ``why`` is recorded in the ledger, ``detail`` is what the log says."""

    why: str
    detail: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again at ``at``; the ledger records ``why``, the log says ``detail``."""

    at: datetime
    why: str
    detail: str


@dataclass(frozen=True, slots=True)
class Release:
    """Give it back, unsent and not counted as tried: an instance with a newer file sends it."""


def on_claim(
    row: Row,
    reminder: Reminder | None,
    now: datetime,
    catch_up: timedelta,
    *,
    current: bool = True,
) -> Send | Skip | Fail | Release:
    """What to do with a claimed row at ``now``: send it, or settle it without sending.

    A row the plan dropped meanwhile is skipped, if this plan comes from the newest file of
    its calendar (``current``); if not (another instance has a newer file, or one this
    instance lacks), the row is released to the instances that plan it. Nothing is sent once
    its event has begun (a retry then fails, with its last error). A first attempt of a
    reminder due longer ago than ``catch_up`` (missed while eventwatch was down) is skipped;
    a retry is never too late, and a notice is worth sending until the event begins. A
    reminder sent more than ``LATE_AFTER`` after its due instant says it is late.
    """
    if reminder is None:
        return Skip("no longer planned") if current else Release()
    if reminder.starts <= now:
        why = "the event had begun"
        if row.attempts > 1:
            return Fail(f"{why}; last error: {row.last_error}", why)
        return Skip(why)
    lateness = now - row.due
    is_reminder = row.kind == Kind.REMINDER
    if row.attempts <= 1 and is_reminder and lateness > catch_up:
        return Skip(f"due {lateness} before it could be sent (catch_up is {catch_up})")
    return Send(late=is_reminder and lateness > LATE_AFTER)


def cannot_make(reason: str) -> Fail:
    """A message that cannot be made fails at once and alone; trying again makes it no better."""
    why = f"the message cannot be made: {reason}"
    return Fail(why, why)


def backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``: 1 minute, doubling, at most 1 hour."""
    doublings = min(max(attempts - 1, 0), 32)  # past a few, only the cap matters: no overflow
    return min(FIRST_RETRY * (1 << doublings), LAST_RETRY)


def after_failure(
    row: Row, reminder: Reminder, now: datetime, *, permanent: bool, reply: str
) -> Retry | Fail:
    """What to do after the server refused ``row``'s message at ``now`` with ``reply``.

    A permanent refusal (5xx) is final. A transient one is tried again after ``backoff``,
    unless the event begins before then.
    """
    if permanent:
        return Fail(reply, reply)
    retry_at = now + backoff(row.attempts)
    if retry_at >= reminder.starts:
        return Fail(f"{reply}; no time left to retry", reply)
    return Retry(retry_at, reply, f"{reply}; next attempt {retry_at:%H:%M:%S}Z")


# When a notice is owed, and to whom


def notice_kind(event: Event) -> Kind:
    """The notice a change of ``event`` calls for: ``cancelled`` or ``changed``."""
    return Kind.CANCELLED if event.status is EventStatus.CANCELLED else Kind.CHANGED


def reminded(rows: Iterable[Row]) -> list[str]:
    """The addresses in ``rows`` that were sent a reminder (not a notice), each once, sorted."""
    return sorted(
        {r.recipient for r in rows if r.status == Status.SENT and r.kind == Kind.REMINDER}
    )


def recipients(planned: Iterable[Reminder]) -> dict[tuple[str, str], Recipient]:
    """Who the plan names, by event uid and lower-cased address: a notice greets them alike."""
    return {(r.event_uid, r.address.lower()): r.recipient for r in planned}


def notice(  # noqa: PLR0913, PLR0917 - what a notice says, and who the plan names
    event: Event,
    kind: Kind,
    sequence: int,
    address: str,
    due: datetime,
    known: Mapping[tuple[str, str], Recipient],
) -> Reminder:
    """The ``kind`` notice of ``event``'s revision ``sequence`` to ``address``, due at ``due``.

    The recipient is as the plan names them, or just the address if the plan no longer does.
    An all-day event counts as begun at its first midnight: no notice is sent once it has.
    """
    recipient = known.get((event.uid, address.lower())) or Recipient(address=address)
    return Reminder(
        event=event,
        recipient=recipient,
        offset=None,
        starts=event.begins(time.min),
        due=due,
        kind=kind,
        sequence=sequence,
    )


def notices(
    event: Event,
    sequence: int,
    rows: Iterable[Row],
    now: datetime,
    known: Mapping[tuple[str, str], Recipient],
) -> list[Reminder]:
    """The notices owed now that ``event`` rose to ``sequence``: one per recipient reminded.

    ``rows`` are the ledger's rows of the event. Each recipient already sent a reminder of it
    is told, once per change; someone not yet reminded will read the new details anyway.
    """
    kind = notice_kind(event)
    return [notice(event, kind, sequence, a, now, known) for a in reminded(rows)]
