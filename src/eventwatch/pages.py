"""Pure: a publication in, the HTML index page that lists its feeds and events out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

from eventwatch import __version__, templating, wording
from eventwatch.publication import ALL

if TYPE_CHECKING:
    from eventwatch.models import Event
    from eventwatch.publication import Publication

UPCOMING = 50
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


def _item(event: Event) -> _Item:
    return _Item(wording.when(event), event.title, event.location, wording.status(event))


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
    page = templating.render(
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
