"""Pure: events with their revisions in, an iCalendar feed (bytes and ETag) out.

The only module that imports icalendar. icalendar encodes and folds every value and builds
the calendar header and VTIMEZONEs; this module joins an event's encoded lines into its VEVENT,
caches each VEVENT by the event's content and revision (a feed after one edit encodes one
event), and joins the cached VEVENTs into the feed.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import icalendar

from eventwatch import __version__, files, timezones, wording
from eventwatch.models import event_uid

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from eventwatch.models import Event
    from eventwatch.revisions import Revision

PRODID = f"-//eventwatch//eventwatch {__version__}//EN"
_END = b"END:VCALENDAR\r\n"
_FOLD_AT = 75  # octets, excluding the line break (RFC 5545, 3.1)
_BEGIN_EVENT = b"BEGIN:VEVENT\r\n"
_END_EVENT = b"END:VEVENT\r\n"
_BEGIN_ALARM = b"BEGIN:VALARM\r\n"
_END_ALARM = b"END:VALARM\r\n"
_ACTION_DISPLAY = b"ACTION:DISPLAY\r\n"
_TRANSPARENT = b"TRANSP:TRANSPARENT\r\n"


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as a feed shows it: the record, its revision, and its alarms' triggers."""

    event: Event
    revision: Revision
    alarms: tuple[timedelta, ...] = ()
    key: tuple[object, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Fix what the encoded VEVENT depends on: the event's content, revision and alarms."""
        revision = self.revision
        key = (revision.uid, revision.content, revision.sequence, revision.modified, self.alarms)
        # A frozen dataclass sets its own derived field this way, once.
        object.__setattr__(self, "key", key)


@dataclass(frozen=True, slots=True)
class Feed:
    """A rendered feed: its bytes, strong ETag, and the newest change among its events."""

    body: bytes
    etag: str
    last_modified: datetime | None

    @classmethod
    def of(cls, body: bytes, last_modified: datetime | None) -> Feed:
        """Wrap ``body`` with an ETag derived from its bytes alone, so instances agree."""
        return cls(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"', last_modified)


def _dtend(event: Event) -> date | datetime:
    """DTEND is exclusive: an all-day event ends the day after its last day."""
    if event.all_day:
        return event.last_day + timedelta(days=1)
    return event.end


_CONTINUATION = 0b1000_0000
"""A UTF-8 byte that continues a character starts with the bits 10."""

_SEGMENT = _FOLD_AT - 1
"""Octets of a folded line's piece: icalendar's folding keeps each under 75, the space aside."""


def _fold(line: bytes) -> bytes:
    """End a content line, folded as icalendar folds one longer than 75 octets.

    On the UTF-8 bytes rather than character by character (icalendar's way, half of a cold
    render): each piece is the longest run of whole characters of at most 74 octets, except
    that a backslash or caret ending a piece of several characters moves to the next one, so
    that no escape is split. tests/test_feeds.py checks it against icalendar for any text.
    """
    if len(line) <= _FOLD_AT:
        return line + b"\r\n"
    pieces = []
    start, size = 0, len(line)
    while size - start > _SEGMENT:
        end = start + _SEGMENT
        while line[end] & 0b1100_0000 == _CONTINUATION:  # inside a character: cut before it
            end -= 1
        if line[end - 1] in b"\\^" and end - start > 1:
            end -= 1
        pieces.append(line[start:end])
        start = end
    pieces.append(line[start:])
    return b"\r\n ".join(pieces) + b"\r\n"


def _line(name: str, value: bytes) -> bytes:
    """One content line with no parameters."""
    return _fold(name.encode() + b":" + value)


@functools.lru_cache(maxsize=256)
def _params(params: tuple[tuple[str, str], ...]) -> bytes:
    """Encoded parameters (``;TZID=Europe/Brussels``); a feed uses only a few different ones."""
    return b";" + bytes(icalendar.Parameters(dict(params)).to_ical(sorted=True))


def _repeated(value: datetime) -> bool:
    """Whether ``value`` is the second of a wall time that the clocks go through twice.

    RFC 5545 reads such a local time as the first; only a UTC time can name the second.
    """
    return bool(value.fold) and value.utcoffset() != value.replace(fold=0).utcoffset()


def _when(name: str, value: date | datetime, zone: str) -> bytes:
    """DTSTART or DTEND: a date with VALUE=DATE, a UTC time with a Z, or a local time and TZID."""
    if isinstance(value, datetime) and (timezones.is_utc(zone) or _repeated(value)):
        # RFC 5545 writes UTC times with a Z and forbids a TZID on them (icalendar drops a
        # TZID=UTC parameter for that reason, which left "DTSTART;:" with no zone at all).
        # The second of a repeated wall time has no local form, so it is written in UTC too.
        return _line(name, _utc(value))
    if isinstance(value, datetime):
        params = _params((("TZID", zone),))
        encoded = bytes(icalendar.vDatetime(value.replace(tzinfo=None)).to_ical())
    else:
        params = _params((("VALUE", "DATE"),))
        encoded = bytes(icalendar.vDate(value).to_ical())
    return _fold(name.encode() + params + b":" + encoded)


def _text(value: str) -> bytes:
    return bytes(icalendar.vText(value).to_ical())


# Lines that most events of a feed share, each encoded by icalendar once (a tenth of a render).
@functools.lru_cache(maxsize=1024)
def _categories(categories: tuple[str, ...]) -> bytes:
    return _line("CATEGORIES", bytes(icalendar.vCategory(list(categories)).to_ical()))


@functools.lru_cache(maxsize=64)
def _status(status: str) -> bytes:
    return _line("STATUS", _text(status.upper()))


@functools.lru_cache(maxsize=1024)
def _sequence(sequence: int) -> bytes:
    return _line("SEQUENCE", bytes(icalendar.vInt(sequence).to_ical()))


@functools.lru_cache(maxsize=1024)
def _trigger(trigger: timedelta) -> bytes:
    return _line("TRIGGER", bytes(icalendar.vDuration(trigger).to_ical()))


def _utc(value: datetime) -> bytes:
    """An instant as a UTC time with its Z."""
    # Cached by the UTC instant: Python holds the two 01:30s of a night the clocks go back
    # equal (same zone, same wall time), so a cache keyed by local times would mix them up.
    return _utc_encoded(value.astimezone(UTC))


@functools.lru_cache(maxsize=4096)
def _utc_encoded(value: datetime) -> bytes:
    """A UTC time, encoded once: most events of a feed share a few stamps."""
    return bytes(icalendar.vDatetime(value).to_ical())


def _vevent(entry: Entry) -> bytes:
    """One VEVENT, each value encoded by icalendar, the lines joined here.

    icalendar's object model spends most of a render building and walking its own objects;
    the encoded values and folding are what matter, so those are icalendar's and the rest is
    a join. The tests check that the result parses equal to icalendar's own rendering.
    """
    event, revision = entry.event, entry.revision
    stamp = _utc(revision.modified)
    lines = [
        _BEGIN_EVENT,
        _line("UID", _text(event.uid)),
        _line("DTSTAMP", stamp),
        _when("DTSTART", event.start, event.timezone),
        _when("DTEND", _dtend(event), event.timezone),
        _line("SUMMARY", _text(event.title)),
    ]
    text = wording.description(event)
    if text:
        lines.append(_line("DESCRIPTION", _text(text)))
    if event.location:
        lines.append(_line("LOCATION", _text(event.location)))
    if event.categories:
        lines.append(_categories(event.categories))
    lines.append(_status(event.status.value))
    if event.url is not None:
        lines.append(_line("URL", bytes(icalendar.vUri(str(event.url)).to_ical())))
    if event.related_to is not None:
        lines.append(_line("RELATED-TO", _text(event_uid(event.calendar, event.related_to))))
    lines.append(_sequence(revision.sequence))
    lines.append(_line("LAST-MODIFIED", stamp))
    if event.all_day:
        # All-day events do not block time in the subscribers' calendars.
        lines.append(_TRANSPARENT)
    for trigger in entry.alarms:
        lines += [
            _BEGIN_ALARM,
            _ACTION_DISPLAY,
            _line("DESCRIPTION", _text(event.title)),
            _trigger(trigger),
            _END_ALARM,
        ]
    lines.append(_END_EVENT)
    return b"".join(lines)


def _vtimezone(name: str, first_year: int, last_year: int) -> bytes:
    component = icalendar.Timezone()
    component.add("tzid", name)
    for observance in timezones.observances(name, first_year, last_year):
        sub = icalendar.TimezoneDaylight() if observance.daylight else icalendar.TimezoneStandard()
        sub.add("dtstart", observance.start)
        if observance.byday is not None:
            rule: dict[str, object] = {
                "FREQ": "YEARLY",
                "BYMONTH": observance.bymonth,
                "BYDAY": observance.byday,
            }
            if observance.until is not None:
                rule["UNTIL"] = observance.until.astimezone(UTC)
            sub.add("rrule", rule)
        sub.add("tzoffsetfrom", observance.offset_from)
        sub.add("tzoffsetto", observance.offset_to)
        if observance.name:
            sub.add("tzname", observance.name)
        component.add_component(sub)
    return bytes(component.to_ical())


Span = tuple[str, int, int] | None
"""The zone a timed event is written in, with its first and last year; None for all-day or UTC."""


def _span(event: Event) -> Span:
    start, end = event.start, event.end
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return None  # all-day events are dates, which carry no zone
    if timezones.is_utc(event.timezone):
        return None  # UTC times end in Z, which every reader knows without a VTIMEZONE
    return (event.timezone, start.year, end.year)


@dataclass(frozen=True, slots=True)
class Header:
    """What a feed says about itself."""

    name: str
    description: str
    refresh: timedelta


def _header(header: Header) -> bytes:
    calendar = icalendar.Calendar()
    calendar.add("version", "2.0")
    calendar.add("prodid", PRODID)
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    # icalendar knows NAME and the X-WR- properties by no type, and writes a string it does
    # not know as it is: unescaped, and a newline would end the line. They are all TEXT.
    name = icalendar.vText(header.name)
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)
    if header.description:
        description = icalendar.vText(header.description)
        calendar.add("description", description)
        calendar.add("x-wr-caldesc", description)
    calendar.add("refresh-interval", header.refresh, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", icalendar.vDuration(header.refresh))
    body = bytes(calendar.to_ical())
    assert body.endswith(_END)  # noqa: S101 - icalendar always closes the calendar this way
    return body[: -len(_END)]


Placement = tuple[tuple[object, ...], int, int, Span]
"""An encoded event's cache key, its start and end in a feed's bytes, and its zone's years."""


@dataclass
class Renderer:
    """Renders feeds; keeps each VEVENT and VTIMEZONE it encoded for the next render.

    An encoded event is kept as its place in the last feed that held it (that feed's bytes, a
    start and an end), not as a copy: a 100,000-event feed is held once, not twice. Events that
    sat next to each other last time are copied into the next feed as one run.
    """

    _events: dict[tuple[object, ...], tuple[bytes, int, int, Span]] = field(default_factory=dict)
    _zones: dict[tuple[str, int, int], bytes] = field(default_factory=dict)
    # Filtered feeds are rendered in request threads while a reload renders in another.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def render(self, header: Header, entries: Sequence[Entry], *, remember: bool = True) -> Feed:
        """The feed of ``entries`` (in the order given) under ``header``; byte-for-byte stable.

        ``remember=False`` uses the cache without pointing it at this feed: for filtered
        feeds, so that the cache keeps following the full ones.
        """
        with self._lock:
            return self._render(header, entries, remember=remember)

    def _render(self, header: Header, entries: Sequence[Entry], *, remember: bool) -> Feed:
        parts: list[bytes | memoryview] = []
        placed: list[tuple[tuple[object, ...], int, int, Span]] = []
        years: dict[str, tuple[int, int]] = {}
        position = 0
        run: tuple[bytes, int, int] = (b"", 0, 0)
        for entry in entries:
            key = entry.key
            found = self._events.get(key)
            if found is None:
                fresh = _vevent(entry)
                found = (fresh, 0, len(fresh), _span(entry.event))
            source, start, end, span = found
            if source is run[0] and start == run[2]:
                run = (source, run[1], end)
            else:
                parts.append(memoryview(run[0])[run[1] : run[2]])
                run = (source, start, end)
            if span is not None:
                zone, first, last = span
                known = years.get(zone)
                if known is None or first < known[0] or last > known[1]:
                    years[zone] = (first, last) if known is None else (
                        min(first, known[0]), max(last, known[1]),
                    )  # fmt: skip
            placed.append((key, position, position + end - start, span))
            position += end - start
        parts.append(memoryview(run[0])[run[1] : run[2]])
        parts.append(_END)
        head: list[bytes | memoryview] = [_header(header)]
        for zone, (first, last) in sorted(years.items()):
            if (zone, first, last) not in self._zones:
                self._zones[zone, first, last] = _vtimezone(zone, first, last)
            head.append(self._zones[zone, first, last])
        # One join: one allocation of the exact size, one copy per run, off the GIL if large.
        body = files.join(head + parts)
        del parts, run
        if remember:
            shift = sum(len(part) for part in head)
            self._events.update(
                (key, (body, start + shift, end + shift, span)) for key, start, end, span in placed
            )
        modified = max((e.revision.modified for e in entries), default=None)
        return Feed.of(body, modified)

    def placements(self, body: bytes) -> list[Placement]:
        """Where each cached event sits in ``body`` (a feed this renderer made), to keep it."""
        with self._lock:
            return [
                (key, start, end, span)
                for key, (source, start, end, span) in self._events.items()
                if source is body
            ]

    def seed(self, body: bytes, placements: Iterable[Placement]) -> None:
        """Take in events encoded by an earlier run, so a restart need not encode them again."""
        with self._lock:
            for key, start, end, span in placements:
                self._events[key] = (body, start, end, span)

    def retain(self, entries: Iterable[Entry]) -> None:
        """Forget encoded events other than ``entries``, so edits and removals do not pile up."""
        keep = {e.key for e in entries}
        with self._lock:
            self._events = {k: v for k, v in self._events.items() if k in keep}
