"""Frozen records: calendars, events, recipients and reminder policies; no I/O."""

from __future__ import annotations

import bisect
import contextlib
import difflib
import functools
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Self

import email_validator
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import core_schema

from eventwatch.errors import InvalidField

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pydantic import GetCoreSchemaHandler


class Record(BaseModel):
    """Base of every record: immutable, and unknown keys are errors rather than ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _derived() -> Any:  # noqa: ANN401 - pydantic's Field is typed to fit any annotation
    """Mark a field its reader fills in (a calendar's id is its file name); files may not set it."""
    return Field(json_schema_extra={"derived": True})


def derived_fields(model: type[BaseModel]) -> list[str]:
    """The fields of ``model`` that files may not set because the reader derives them."""
    return [
        name
        for name, info in model.model_fields.items()
        if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("derived")
    ]


# --- text -----------------------------------------------------------------------------------

# Line and paragraph separators break mail headers and iCalendar lines just as control
# characters do, so they are refused with them: Unicode's categories Cc, Zl and Zp, which
# are exactly these code points (tests/test_models.py checks every code point). One compiled
# expression over a string, not a category lookup per character: a description of 600
# characters is checked in about a microsecond.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROLS_BUT_NEWLINE_AND_TAB = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _refuse_controls(value: str, *, text: bool = False) -> str:
    """``value``, or ``ValueError`` naming its first control character (``text``: bar LF, TAB)."""
    found = (_CONTROLS_BUT_NEWLINE_AND_TAB if text else _CONTROLS).search(value)
    if found is not None:
        where = "here (only newlines and tabs are)" if text else "here"
        msg = f"control character U+{ord(found.group()):04X} is not allowed {where}"
        raise ValueError(msg)
    return value


LINE_AT_MOST = 1_000
"""Characters in one line of text (a title, a place, a name): a subject line, not a page."""

TEXT_AT_MOST = 65_536
"""Characters in free text (a description): pages of agenda, not a book in every mail."""


def _at_most(value: str, limit: int) -> str:
    if len(value) > limit:
        msg = f"{len(value):,} characters is too long (at most {limit:,} are allowed here)"
        raise ValueError(msg)
    return value


def _single_line(value: str) -> str:
    return _refuse_controls(_at_most(value, LINE_AT_MOST))


def _paragraphs(value: str) -> str:
    return _refuse_controls(_at_most(value, TEXT_AT_MOST), text=True)


def _normalise_newlines(value: object) -> object:
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _slug(value: str) -> str:
    if len(value) > 64 or not _SLUG.fullmatch(value):  # noqa: PLR2004 - documented limit
        msg = (
            f"{value!r} is not a valid id: use lowercase letters, digits and single hyphens, "
            "at most 64 characters"
        )
        raise ValueError(msg)
    return value


Line = Annotated[str, AfterValidator(_single_line)]
"""One line of text: no control characters at all."""

Title = Annotated[str, AfterValidator(_single_line), AfterValidator(_not_blank)]
"""A line of text that must say something."""

Text = Annotated[str, BeforeValidator(_normalise_newlines), AfterValidator(_paragraphs)]
"""Free text that may hold newlines and tabs (descriptions)."""


def _no_comma(value: str) -> str:
    if "," in value:
        # iCalendar escapes it, but many readers split CATEGORIES on every comma.
        msg = f"{value!r}: a category may not contain a comma (give two categories instead)"
        raise ValueError(msg)
    return value


Category = Annotated[
    str, AfterValidator(_single_line), AfterValidator(_not_blank), AfterValidator(_no_comma)
]
"""A tag such as ``summit``: one line, no comma."""

Slug = Annotated[str, AfterValidator(_slug)]
"""An identifier that is safe in file names, URLs and UIDs."""


# --- time zones -----------------------------------------------------------------------------


_NOT_ZONES = frozenset({"localtime", "Factory"})
"""Names the tz data lists that are not zones: the machine's own clock, and a placeholder."""


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def is_zone(name: object) -> bool:
    """Tell whether ``name`` is an IANA time-zone name this machine knows."""
    return isinstance(name, str) and name in _zone_names()


def _iana_zone(value: str) -> str:
    if not is_zone(value):
        guess = difflib.get_close_matches(value, _zone_names(), n=1)
        hint = f" (did you mean {guess[0]!r}?)" if guess else " (e.g. 'Europe/Brussels', 'UTC')"
        msg = f"{value!r} is not an IANA time zone{hint}"
        raise ValueError(msg)
    return value


TimeZoneName = Annotated[str, AfterValidator(_iana_zone)]
"""An IANA time-zone name such as ``Europe/Brussels``."""


def localize(wall: datetime, zone: tzinfo) -> datetime:
    """Attach ``zone`` to a naive wall time, refusing times the clocks skip over."""
    aware = wall.replace(tzinfo=zone)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall:
        msg = f"{wall.isoformat()} does not exist in {zone} (the clocks skip it)"
        raise ValueError(msg)
    return aware


# --- e-mail addresses -----------------------------------------------------------------------


def _email(value: str) -> str:
    try:
        checked = email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        msg = f"{value!r} is not an e-mail address: {exc}"
        raise ValueError(msg) from exc
    # An internationalised domain travels in its ASCII (IDNA) form, which every server takes;
    # only a local part that is not ASCII needs SMTPUTF8, which many servers lack.
    return checked.ascii_email or checked.normalized


EmailAddress = Annotated[str, AfterValidator(_single_line), AfterValidator(_email)]
"""A bare e-mail address (no display name), checked for form only, never by DNS."""


# --- durations ------------------------------------------------------------------------------

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W|(?:(?P<days>\d+)D)?(?:T(?=\d)(?:(?P<hours>\d+)H)?"
    r"(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?)",
)


OFFSET_AT_MOST_DAYS = 3660
"""The longest offset a record takes: about ten years before the start."""


@dataclass(frozen=True, order=True, slots=True)
class Offset:
    """How long before an event a reminder is due.

    Whole days are counted in the event's wall time (``P1D`` before 09:00 is 09:00 the day
    before, across a DST change too); hours, minutes and seconds are exact durations.
    Months and years are refused because their length varies and iCalendar alarms cannot say
    them.
    """

    days: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Offset:
        """Read an ISO 8601 duration such as ``P30D``, ``P1W``, ``PT2H`` or ``P1DT12H``."""
        match = _DURATION.fullmatch(text.strip().upper()) if isinstance(text, str) else None
        if match is None or text.strip().upper() in {"P", "PT"}:
            msg = (
                f"{text!r} is not a duration like 'P30D', 'P1W', 'PT2H' or 'P1DT12H' "
                "(months and years are not allowed: their length varies)"
            )
            raise ValueError(msg)
        parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
        days = parts.get("weeks", 0) * 7 + parts.get("days", 0)
        seconds = parts.get("hours", 0) * 3600 + parts.get("minutes", 0) * 60
        return cls(days=days, seconds=seconds + parts.get("seconds", 0))

    def within_bounds(self) -> Offset:
        """This offset if a reminder can be planned with it; else ``ValueError`` saying why.

        Less than a minute before the start is no warning (the reminder would be skipped as
        the event begins), and more than ``OFFSET_AT_MOST_DAYS`` is no reminder.
        """
        total = self.days * 86_400 + self.seconds
        if total < 60:  # noqa: PLR2004 - one minute, as the message says
            msg = f"{self} is too short: a reminder must be due at least PT1M before the start"
            raise ValueError(msg)
        if total > OFFSET_AT_MOST_DAYS * 86_400:
            msg = f"{self} is too long: at most P{OFFSET_AT_MOST_DAYS}D (about ten years)"
            raise ValueError(msg)
        return self

    @property
    def exact(self) -> timedelta:
        """The part counted as an exact duration."""
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        """Render in the canonical ISO 8601 form (``P7D``, ``PT2H``, ``P1DT30M``)."""
        hours, rest = divmod(self.seconds, 3600)
        minutes, seconds = divmod(rest, 60)
        clock = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
        day = f"{self.days}D" if self.days else ""
        if not day and not clock:
            return "PT0S"
        return f"P{day}{'T' + clock if clock else ''}"

    def before(self, start: datetime) -> datetime:
        """The instant this offset before ``start`` (an aware date-time), as UTC."""
        wall = start.replace(tzinfo=None) - timedelta(days=self.days)
        # Wall time after subtracting whole days can land in a DST gap; zoneinfo then reads it
        # with the offset before the change, which is what a person means by "a day before".
        shifted = wall.replace(tzinfo=start.tzinfo)
        return shifted.astimezone(UTC) - self.exact

    @classmethod
    def __get_pydantic_core_schema__(
        cls,
        source: type[Any],
        handler: GetCoreSchemaHandler,
    ) -> core_schema.CoreSchema:
        """Validate from a duration string and serialise back to one."""
        del source, handler

        def validate(value: object) -> Offset:
            if isinstance(value, Offset):
                return value
            if not isinstance(value, str):
                msg = f"expected a duration string like 'P1D', got {value!r}"
                raise ValueError(msg)  # noqa: TRY004 - pydantic reports ValueError, not TypeError
            return cls.parse(value).within_bounds()

        return core_schema.no_info_plain_validator_function(
            validate,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
        )


# --- records --------------------------------------------------------------------------------


class Status(StrEnum):
    """Whether an event will happen; cancelled events stay in feeds so clients remove them."""

    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class Recipient(Record):
    """Someone who receives reminders; ``timezone`` is the zone their mail shows times in."""

    address: EmailAddress
    name: Line | None = None
    timezone: TimeZoneName | None = None


class Participant(Record):
    """A person or body taking part in an event."""

    name: Title
    role: Line = ""


class Source(Record):
    """Where the facts about an event come from."""

    publisher: Title
    title: Title
    published: date | None = None
    url: HttpUrl | None = None


def _first_repeat(values: list[str]) -> tuple[int, int] | None:
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            return seen[value], index
        seen[value] = index
    return None


class ReminderPolicy(Record):
    """When reminders are due and who gets them; unset fields inherit from the level above.

    Set in the settings (defaults), on a calendar and on an event. An event's ``offsets``
    replace the calendar's (an empty list means none); its ``recipients`` add to them.
    """

    offsets: tuple[Offset, ...] | None = None
    all_day_at: time | None = None
    recipients: tuple[Recipient, ...] = ()

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        if self.all_day_at is not None and self.all_day_at.tzinfo is not None:
            raise InvalidField(("all_day_at",), "give a local time such as '09:00', no offset")
        if self.all_day_at is not None and self.all_day_at.microsecond:
            raise InvalidField(("all_day_at",), "give whole seconds, such as '09:00'")
        offsets = [str(o) for o in self.offsets or ()]
        repeat = _first_repeat(offsets)
        if repeat:
            first, again = repeat
            msg = f"{offsets[again]} repeats offsets[{first}]"
            raise InvalidField(("offsets", again), msg)
        repeat = _first_repeat([r.address.lower() for r in self.recipients])
        if repeat:
            first, again = repeat
            msg = f"{self.recipients[again].address} repeats recipients[{first}]"
            raise InvalidField(("recipients", again, "address"), msg)
        return self


FALLBACK_ALL_DAY_AT = time(9, 0)
"""When an all-day event's reminders are anchored if no level of policy says."""


@dataclass(frozen=True, slots=True)
class Timing:
    """The offsets and all-day time in force for one event, its levels of policy resolved."""

    offsets: tuple[Offset, ...]
    all_day_at: time

    @classmethod
    def of(cls, event: Event, calendar: ReminderPolicy, defaults: ReminderPolicy) -> Timing:
        """Each field from the first level that sets it: the event, its calendar, the defaults.

        The reminder plan and the feed's alarms both read it, so they cannot disagree.
        """
        levels = (event.reminders, calendar, defaults)
        offsets = next((p.offsets for p in levels if p.offsets is not None), ())
        at = next((p.all_day_at for p in levels if p.all_day_at is not None), FALLBACK_ALL_DAY_AT)
        return cls(offsets, at)


_NO_END = object()
"""Stands in for the missing end of a timed event, so that only that field reports it."""

_AS_BAD_START = object()
"""Stands in for the missing end of an event whose start is invalid and reported already."""

_AS_START = object()
"""Stands in for the missing end of an all-day event: its start, once that is valid."""


FIRST_DAY = date(1583, 1, 1)
"""The first day an event may touch: the Gregorian calendar's first whole year (iCalendar's)."""

LAST_DAY = date(9998, 12, 31)
"""The last day an event may touch, leaving room for the day after it and for every zone."""


def _in_range(value: date | datetime) -> date | datetime:
    """``value`` if its day lies between ``FIRST_DAY`` and ``LAST_DAY``; else ``ValueError``."""
    day = value.date() if isinstance(value, datetime) else value
    if not FIRST_DAY <= day <= LAST_DAY:
        msg = (
            f"{value.isoformat()} is out of range: events lie between "
            f"{FIRST_DAY.isoformat()} and {LAST_DAY.isoformat()}"
        )
        raise ValueError(msg)
    return value


def _when(value: object, zone: tzinfo | None) -> date | datetime:
    """Turn a file's start or end into a date or an aware date-time in the event's zone."""
    if value is _NO_END:
        msg = "a timed event needs an end (only all-day events may leave it out)"
        raise ValueError(msg)
    if value is _AS_BAD_START:
        return date.min  # never kept: the start's own error fails the record
    if isinstance(value, str):
        with contextlib.suppress(ValueError):  # what is left unparsed is reported below
            value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if type(value) is date:
        return _in_range(value)
    if isinstance(value, datetime):
        _in_range(value)  # before any arithmetic on it, which could overflow at the ends
        if value.microsecond:
            msg = f"{value.isoformat()}: fractions of a second are not allowed (iCalendar has none)"
            raise ValueError(msg)
        if zone is None:
            # The zone itself is invalid and reported on its own; a placeholder keeps this
            # field from repeating that one problem.
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return _in_range(value.astimezone(zone) if value.tzinfo else localize(value, zone))
    msg = f"expected a date (2026-07-07) or a local date-time (2026-07-07T10:00:00), got {value!r}"
    raise ValueError(msg)


def _implied_end(start: object) -> object:
    """The end of an event that gives none: its start day if all-day, else a marker."""
    if isinstance(start, datetime) or (isinstance(start, str) and "T" in start):
        return _NO_END
    return _AS_START if isinstance(start, date | str) else _AS_BAD_START


def event_uid(calendar: str, event_id: str) -> str:
    """The UID of event ``event_id`` of ``calendar``, whether or not it is at hand."""
    return f"{uid_prefix(calendar)}{event_id}@eventwatch"


def uid_prefix(calendar: str) -> str:
    """What the UID of every event of ``calendar`` begins with (and nothing else's does)."""
    return f"{calendar}/"


def calendar_of(uid: str) -> str:
    """The calendar id in an event UID, or in anything that begins with one (a ledger key)."""
    return uid.partition("/")[0]


class Event(Record):
    """One event of a calendar.

    All-day events hold dates, with ``end`` the last day inclusive (as a person writes it);
    timed events hold aware date-times in the event's zone, with ``end`` exclusive.
    """

    calendar: Slug = _derived()
    id: Slug
    title: Title
    # The zone comes before start and end so that their validators can read it.
    timezone: TimeZoneName
    start: date | datetime
    end: date | datetime
    location: Line = ""
    description: Text = ""
    categories: tuple[Category, ...] = ()
    url: HttpUrl | None = None
    status: Status = Status.CONFIRMED
    participants: tuple[Participant, ...] = ()
    sources: tuple[Source, ...] = ()
    related_to: Slug | None = None
    reminders: ReminderPolicy = ReminderPolicy()

    @model_validator(mode="before")
    @classmethod
    def _default_end(cls, data: Any) -> Any:  # noqa: ANN401 - pydantic hands over raw input
        if isinstance(data, dict) and "start" in data and "end" not in data:
            return {**data, "end": _implied_end(data["start"])}
        return data

    @field_validator("start", "end", mode="before")
    @classmethod
    def _localize(cls, value: object, info: ValidationInfo) -> date | datetime:
        if value is _AS_START:
            # An invalid start is reported on its own; the placeholder is never kept.
            start: date | datetime = info.data.get("start", date.min)
            return start
        name = info.data.get("timezone")
        return _when(value, zoneinfo.ZoneInfo(name) if name else None)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: date | datetime, info: ValidationInfo) -> date | datetime:
        start = info.data.get("start")
        if start is None:
            return end
        if isinstance(start, datetime) != isinstance(end, datetime):
            msg = "start and end must both be dates (all day) or both be date-times"
            raise ValueError(msg)
        if end < start:
            msg = f"{end.isoformat()} is before start {start.isoformat()}"
            raise ValueError(msg)
        return end

    @property
    def uid(self) -> str:
        """The iCalendar UID: derived from calendar and id only, so edits never change it."""
        return event_uid(self.calendar, self.id)

    @property
    def all_day(self) -> bool:
        """Whether the event spans whole days rather than a time range."""
        return not isinstance(self.start, datetime)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The event's time zone."""
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def first_day(self) -> date:
        """The local date the event starts on."""
        return self.start.date() if isinstance(self.start, datetime) else self.start

    @property
    def last_day(self) -> date:
        """The last local date the event covers (inclusive)."""
        if isinstance(self.end, datetime):
            assert isinstance(self.start, datetime)  # noqa: S101 - guaranteed by the validator
            # An event ending at midnight does not cover the day that midnight opens.
            end = self.end - timedelta(microseconds=1) if self.end > self.start else self.end
            return end.date()
        return self.end

    def begins(self, all_day_at: time) -> datetime:
        """The instant the event begins; an all-day event begins at ``all_day_at`` local time."""
        if isinstance(self.start, datetime):
            return self.start
        wall = datetime.combine(self.start, all_day_at)
        return wall.replace(tzinfo=self.zone)


class Calendar(Record):
    """A named set of events with a default zone and a reminder policy."""

    id: Slug = _derived()
    name: Title
    description: Text = ""
    timezone: TimeZoneName
    reminders: ReminderPolicy = ReminderPolicy()
    events: tuple[Event, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:  # noqa: ANN401 - pydantic hands over raw input
        """Give each event its calendar's id and, unless it has its own, the default zone."""
        if not isinstance(data, dict) or not isinstance(data.get("events"), list | tuple):
            return data
        # An invalid default zone or id is reported once, on the calendar, not again on each
        # event: the events get placeholders that the calendar's own error makes moot.
        zone = data.get("timezone") if is_zone(data.get("timezone")) else "UTC"
        calendar_id = data.get("id") if _SLUG.fullmatch(str(data.get("id"))) else "invalid"
        events = [
            {"calendar": calendar_id, "timezone": zone, **event}
            if isinstance(event, dict)
            else event
            for event in data["events"]
        ]
        return {**data, "events": events}

    @model_validator(mode="after")
    def _references(self) -> Self:
        index = {event.id: n for n, event in reversed(list(enumerate(self.events)))}
        for n, event in enumerate(self.events):
            if index[event.id] != n:
                msg = f"{event.id!r} repeats events[{index[event.id]}].id"
                raise InvalidField(("events", n, "id"), msg)
            if event.calendar != self.id:
                msg = f"{event.calendar!r} is not this calendar ({self.id!r})"
                raise InvalidField(("events", n, "calendar"), msg)
        for n, event in enumerate(self.events):
            if event.related_to is None:
                continue
            if event.related_to == event.id:
                raise InvalidField(("events", n, "related_to"), "an event cannot relate to itself")
            if event.related_to not in index:
                msg = f"{event.related_to!r} names no event in this calendar"
                raise InvalidField(("events", n, "related_to"), msg)
        return self


def start_key(event: Event) -> tuple[datetime, str, str]:
    """Where an event sorts: when it begins (all-day: local midnight), its calendar, its id.

    No two events share a key: their order is one.
    """
    return (event.begins(time.min).astimezone(UTC), event.calendar, event.id)


def in_start_order(
    calendars: tuple[Calendar, ...] | list[Calendar], known: Sequence[Event] = ()
) -> list[Event]:
    """Every event of ``calendars`` in ``start_key`` order.

    ``known`` is an earlier result: its events still in ``calendars`` (the very same records)
    keep their order, and the few others are put in their places; many others, all sorted.
    """
    events = [e for c in calendars for e in c.events]
    if not known:
        return sorted(events, key=start_key)
    current = {id(e) for e in events}
    kept = [e for e in known if id(e) in current]
    before = {id(e) for e in kept}
    fresh = [e for e in events if id(e) not in before]
    if len(fresh) * 32 > len(kept):  # each insertion costs a search and a move: sort instead
        return sorted(events, key=start_key)
    for event in sorted(fresh, key=start_key):
        bisect.insort(kept, event, key=start_key)
    return kept
