"""Pure: a publication in, the HTML index page that lists its feeds and events out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from eventwatch import __version__, templates
from eventwatch.models import Status
from eventwatch.publication import ALL

if TYPE_CHECKING:
    from eventwatch.models import Event
    from eventwatch.publication import Publication

UPCOMING = 50
_DASH = "\u2013"  # an en dash, as ranges of dates are printed
PAST = 10


@dataclass(frozen=True, slots=True)
class _FeedLink:
    name: str
    description: str
    count: int
    url: str
    webcal: str
    google: str


@dataclass(frozen=True, slots=True)
class _Item:
    when: str
    title: str
    location: str
    status: str


def feed_url(base: str, name: str) -> str:
    """The http(s) address of feed ``name`` under ``base`` (which ends in a slash)."""
    return f"{base}feeds/{quote(name)}.ics"


def _link(base: str, name: str, title: str, description: str, count: int) -> _FeedLink:
    url = feed_url(base, name)
    webcal = urlunsplit(urlsplit(url)._replace(scheme="webcal"))
    google = "https://calendar.google.com/calendar/render?cid=" + quote(webcal, safe="")
    return _FeedLink(title, description, count, url, webcal, google)


def _day(value: date) -> str:
    return f"{value:%a} {value.day} {value:%B %Y}"


def when(event: Event) -> str:
    """The event's dates (and times) as a person reads them, on the event's own clock."""
    if event.all_day:
        first, last = event.first_day, event.last_day
        if first == last:
            return _day(first)
        if (first.year, first.month) == (last.year, last.month):
            return f"{first.day}{_DASH}{last.day} {last:%B %Y}"
        return f"{_day(first)} {_DASH} {_day(last)}"
    assert isinstance(event.start, datetime)  # noqa: S101 - not all-day means date-times
    assert isinstance(event.end, datetime)  # noqa: S101
    span = f"{event.start:%H:%M}{_DASH}{event.end:%H:%M}"
    if event.first_day != event.last_day:
        span = f"{event.start:%H:%M} {_DASH} {_day(event.end)} {event.end:%H:%M}"
    return f"{_day(event.start)} {span} ({event.timezone})"


def _item(event: Event) -> _Item:
    status = "" if event.status is Status.CONFIRMED else event.status.value
    return _Item(when(event), event.title, event.location, status)


def render(publication: Publication, base: str, now: datetime) -> bytes:
    """The index page: each feed with its subscribe links, then upcoming and recent events."""
    counts = {c.id: len(c.events) for c in publication.calendars}
    links = [_link(base, ALL, "All calendars", "", publication.event_count)]
    links += [
        _link(base, c.id, c.name, c.description.strip(), counts[c.id])
        for c in publication.calendars
    ]
    events = [entry.event for entry in publication.entries]
    # An event is upcoming until it has ended; all-day events end at the end of their last day.
    ended = [e for e in events if _ends(e) <= now]
    upcoming = [e for e in events if _ends(e) > now][:UPCOMING]
    past = list(reversed(ended))[:PAST]
    page = templates.render(
        "index.html.j2",
        title="eventwatch",
        feeds=links,
        upcoming=[_item(e) for e in upcoming],
        past=[_item(e) for e in past],
        version=__version__,
    )
    return page.encode()


def _ends(event: Event) -> datetime:
    if isinstance(event.end, datetime):
        return event.end
    return datetime.combine(event.last_day, time.max, tzinfo=event.zone)
