"""Pure: events with their revisions in, an iCalendar feed (bytes and ETag) out.

The only module that imports icalendar. icalendar encodes every value and every component;
this module caches each event's encoded VEVENT by its content and revision, so a feed after one
edit re-encodes one event, and joins the cached components into the calendar.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import icalendar

from eventwatch import __version__, timezones
from eventwatch.models import event_uid

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from eventwatch.models import Event
    from eventwatch.revisions import Revision

PRODID = f"-//eventwatch//eventwatch {__version__}//EN"
_END = b"END:VCALENDAR\r\n"


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as a feed shows it: the record, its revision, and its alarms' triggers."""

    event: Event
    revision: Revision
    alarms: tuple[timedelta, ...] = ()


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


def description_of(event: Event) -> str:
    """The event's DESCRIPTION: its text, then participants and sources, as plain text."""
    parts = [event.description.strip()] if event.description.strip() else []
    if event.participants:
        lines = [f"- {p.name}, {p.role}" if p.role else f"- {p.name}" for p in event.participants]
        parts.append("Participants:\n" + "\n".join(lines))
    if event.sources:
        lines = []
        for source in event.sources:
            line = f"- {source.publisher}: {source.title}"
            if source.published:
                line += f" ({source.published.isoformat()})"
            if source.url:
                line += f" {source.url}"
            lines.append(line)
        parts.append("Sources:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _dtend(event: Event) -> date | datetime:
    """DTEND is exclusive: an all-day event ends the day after its last day."""
    if event.all_day:
        return event.last_day + timedelta(days=1)
    return event.end


def _vevent(entry: Entry) -> bytes:
    event, revision = entry.event, entry.revision
    component = icalendar.Event()
    component.add("uid", event.uid)
    component.add("dtstamp", revision.modified)
    component.add("dtstart", event.start)
    component.add("dtend", _dtend(event))
    component.add("summary", event.title)
    text = description_of(event)
    if text:
        component.add("description", text)
    if event.location:
        component.add("location", event.location)
    if event.categories:
        component.add("categories", list(event.categories))
    component.add("status", event.status.value.upper())
    if event.url is not None:
        component.add("url", str(event.url))
    if event.related_to is not None:
        component.add("related-to", event_uid(event.calendar, event.related_to))
    component.add("sequence", revision.sequence)
    component.add("last-modified", revision.modified)
    if event.all_day:
        # All-day events do not block time in the subscribers' calendars.
        component.add("transp", "TRANSPARENT")
    for trigger in entry.alarms:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", event.title)
        alarm.add("trigger", trigger)
        component.add_component(alarm)
    return bytes(component.to_ical())


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


def _zone_spans(entries: Iterable[Entry]) -> dict[str, tuple[int, int]]:
    """Each zone of a timed event, with the first and last year it is used in."""
    spans: dict[str, tuple[int, int]] = {}
    for entry in entries:
        event = entry.event
        if event.all_day:
            continue
        first, last = spans.get(event.timezone, (event.first_day.year, event.last_day.year))
        spans[event.timezone] = (min(first, event.first_day.year), max(last, event.last_day.year))
    return spans


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
    calendar.add("name", header.name)
    calendar.add("x-wr-calname", header.name)
    if header.description:
        calendar.add("description", header.description)
        calendar.add("x-wr-caldesc", header.description)
    calendar.add("refresh-interval", header.refresh, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", icalendar.vDuration(header.refresh))
    body = bytes(calendar.to_ical())
    assert body.endswith(_END)  # noqa: S101 - icalendar always closes the calendar this way
    return body[: -len(_END)]


def _key(entry: Entry) -> tuple[object, ...]:
    """What an encoded VEVENT depends on: the event's content, its revision and alarms."""
    revision = entry.revision
    return (revision.uid, revision.content, revision.sequence, revision.modified, entry.alarms)


@dataclass
class Renderer:
    """Renders feeds; keeps each VEVENT and VTIMEZONE it encoded for the next render."""

    _events: dict[tuple[object, ...], bytes] = field(default_factory=dict)
    _zones: dict[tuple[str, int, int], bytes] = field(default_factory=dict)

    def render(self, header: Header, entries: Sequence[Entry]) -> Feed:
        """The feed of ``entries`` (in the order given) under ``header``; byte-for-byte stable."""
        parts = [_header(header)]
        for zone, (first, last) in sorted(_zone_spans(entries).items()):
            span = (zone, first, last)
            if span not in self._zones:
                self._zones[span] = _vtimezone(zone, first, last)
            parts.append(self._zones[span])
        for entry in entries:
            key = _key(entry)
            body = self._events.get(key)
            if body is None:
                body = self._events[key] = _vevent(entry)
            parts.append(body)
        parts.append(_END)
        modified = max((e.revision.modified for e in entries), default=None)
        return Feed.of(b"".join(parts), modified)

    def retain(self, entries: Iterable[Entry]) -> None:
        """Forget encoded events other than ``entries``, so edits and removals do not pile up."""
        keep = {_key(e) for e in entries}
        self._events = {k: v for k, v in self._events.items() if k in keep}
