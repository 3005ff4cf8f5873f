"""Feeds and mail attachments read back as the records they came from, whatever text and zone.

Calendar text reaches the iCalendar wire here; these tests drive any text the records accept,
every zone, and dates from 1970 to 2100 through the feed and the attachment, and check the bytes'
shape and what two independent readers (icalendar and Home Assistant's strict ical) see.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import ical.calendar_stream
import icalendar
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from icalendar.parser import Contentline
from pydantic import ValidationError

from eventwatch import feeds, publication, timezones
from eventwatch.models import Calendar, Event, ReminderPolicy

from .helpers import calendar, render

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from eventwatch.revisions import Revision

ZONES = sorted((zoneinfo.available_timezones() | {"UTC"}) - {"localtime", "Factory"})
"""Every zone a record takes: the tz data's names but the machine's clock and the placeholder."""
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
OPTIONS = publication.Options(timedelta(hours=1), alarms=False, defaults=ReminderPolicy())

# --- strategies -----------------------------------------------------------------------------

ACCEPTED = st.characters(exclude_categories=("Cc", "Zl", "Zp", "Cs"))
"""Any character a record takes in a line of text: all but controls and line separators."""

TRICKY = st.sampled_from([",", ";", "\\", ":", '"', "é", "ß", "Ж", "中", "😀", "🇧🇪", " ", "\u200b"])
"""The characters iCalendar escapes or folds around, and some that take several octets."""

LINE = st.lists(st.one_of(TRICKY, ACCEPTED, st.text(ACCEPTED, max_size=30)), max_size=40).map(
    "".join
)
"""One line of text, sometimes long enough to fold several times."""

TITLE = LINE.filter(str.strip)
"""A title: a line that says something."""

DESCRIPTION = st.lists(st.one_of(LINE, st.sampled_from(["\n", "\t", "\r\n", "\n\n"]))).map("".join)
"""Free text with newlines (also as CRLF, which records turn into LF) and tabs."""

CATEGORY = LINE.filter(lambda text: text.strip() and "," not in text)
"""A category: a line with something in it and no comma."""

FIRST_INSTANT = datetime(1970, 1, 2)  # a day's margin keeps every zone's wall time in 1970
LAST_INSTANT = datetime(2100, 11, 30)  # a month's margin leaves room for the longest event


@st.composite
def timed(draw: st.DrawFn) -> dict[str, Any]:
    """A timed event at any whole second, and up to thirty days long.

    The start is drawn in UTC so that every wall time of every zone can come up, the second
    01:30 of a night the clocks go back included.
    """
    start = draw(st.datetimes(FIRST_INSTANT, LAST_INSTANT)).replace(microsecond=0, tzinfo=UTC)
    length = timedelta(seconds=draw(st.integers(0, 30 * 86400)))
    return {"start": start, "end": start + length}


@st.composite
def all_day(draw: st.DrawFn) -> dict[str, Any]:
    """An all-day event of one day or more."""
    first = draw(st.dates(date(1970, 1, 1), date(2100, 11, 30)))
    return {"start": first, "end": first + timedelta(days=draw(st.integers(0, 30)))}


@st.composite
def event_tables(draw: st.DrawFn, index: int) -> dict[str, Any]:
    """One event as a calendar file gives it, with text, zone and times drawn."""
    table: dict[str, Any] = {
        "id": f"e{index}",
        "title": draw(TITLE),
        "timezone": draw(st.sampled_from(ZONES)),
        **draw(st.one_of(timed(), all_day())),
    }
    for name, strategy in (
        ("location", LINE),
        ("description", DESCRIPTION),
        ("categories", st.lists(CATEGORY, max_size=3)),
    ):
        value = draw(strategy)
        if value:
            table[name] = value
    return table


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    """A calendar of one to four events."""
    count = draw(st.integers(1, 4))
    return calendar(*(draw(event_tables(n)) for n in range(count)))


@st.composite
def named(draw: st.DrawFn) -> Calendar:
    """A calendar with no events and any name and description."""
    table = {"id": "cal", "name": draw(TITLE), "timezone": "UTC", "events": []}
    return Calendar.model_validate(table | {"description": draw(DESCRIPTION)})


EDGES = calendar(
    {"id": "utc", "title": "UTC", "timezone": "UTC", "start": datetime(2026, 12, 10, 10)}
    | {"end": datetime(2026, 12, 10, 12), "description": "a,b;c\\d\n\ne 😀"},
    {"id": "gmt", "title": "GMT", "timezone": "Etc/GMT", "start": datetime(2026, 6, 1, 9)}
    | {"end": datetime(2026, 6, 1, 10)},
    {"id": "again", "title": "The second 01:30", "timezone": "America/New_York"}
    | {"start": datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "end": datetime(2026, 11, 1, 7, 0)},
    {"id": "day", "title": "é" * 80, "location": "Ankara, Türkiye", "start": date(2100, 12, 31)},
)
"""Cases a random draw seldom makes: UTC and GMT, a repeated wall time, the last day, long text."""


# --- what the bytes hold --------------------------------------------------------------------


@dataclass
class Component:
    """A component as its content lines outline it: its properties, then its sub-components."""

    name: str
    properties: list[str] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)


def outline(body: bytes) -> Component:
    """The component tree of ``body``, read from the unfolded lines without any parser."""
    lines = re.sub(r"\r\n[ \t]", "", body.decode()).split("\r\n")
    assert lines.pop() == ""  # the body ends with a line break
    root = Component("")
    stack = [root]
    for line in lines:
        name, _, value = line.partition(":")
        name = name.split(";")[0].upper()
        if name == "BEGIN":
            stack.append(Component(value))
            stack[-2].children.append(stack[-1])
        elif name == "END":
            assert stack.pop().name == value
        else:
            stack[-1].properties.append(name)
    assert stack == [root]
    (top,) = root.children
    return top


def wire_problems(body: bytes) -> list[str]:
    """What breaks RFC 5545's byte rules: bare line breaks, long lines, lines not UTF-8."""
    problems = []
    if not body.endswith(b"\r\n") or not body.count(b"\r") == body.count(b"\n") == (
        body.count(b"\r\n")
    ):
        problems.append("a line break other than CRLF")
    for number, line in enumerate(body.split(b"\r\n")[:-1]):
        if len(line) > 75:
            problems.append(f"line {number} has {len(line)} octets")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"line {number} is not UTF-8 by itself")
    return problems


def event_properties(event: Event) -> list[str]:
    """The property names a VEVENT of ``event`` has, each once, sorted."""
    names = ["UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY", "STATUS", "SEQUENCE"]
    names.append("LAST-MODIFIED")
    if event.description.strip():
        names.append("DESCRIPTION")
    if event.location:
        names.append("LOCATION")
    if event.categories:
        names.append("CATEGORIES")
    if event.all_day:
        names.append("TRANSP")
    return sorted(names)


def zones_declared(events: Iterable[Event]) -> set[str]:
    """The zones a feed of ``events`` declares: those of timed events not written in UTC."""
    return {e.timezone for e in events if not e.all_day and not timezones.is_utc(e.timezone)}


Seen = tuple[str, str, str, str, list[str], date | datetime, date | datetime]
"""What a reader sees of an event: UID, title, place, description, categories, start, end."""


def expected(event: Event) -> Seen:
    """What a reader should see of ``event``: times as UTC instants, all-day ends exclusive."""
    if isinstance(event.start, datetime) and isinstance(event.end, datetime):
        start: date | datetime = event.start.astimezone(UTC)
        end: date | datetime = event.end.astimezone(UTC)
    else:
        start, end = event.start, event.end + timedelta(days=1)
    text = event.description.strip()
    return (event.uid, event.title, event.location, text, list(event.categories), start, end)


def _instant(value: date | datetime) -> date | datetime:
    # Python compares two times of one zone by their wall clocks, blind to which of a
    # repeated hour they are: compare UTC instants instead.
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def seen_by_icalendar(body: bytes) -> list[Seen]:
    """Each VEVENT as icalendar reads it."""
    found = []
    for vevent in icalendar.Calendar.from_ical(body).walk("VEVENT"):
        categories = vevent.get("CATEGORIES")
        found.append(
            (
                str(vevent["UID"]),
                str(vevent["SUMMARY"]),
                str(vevent.get("LOCATION", "")),
                str(vevent.get("DESCRIPTION", "")),
                [str(c) for c in categories.cats] if categories is not None else [],
                _instant(vevent["DTSTART"].dt),
                _instant(vevent["DTEND"].dt),
            ),
        )
    return found


def seen_by_ical(body: bytes) -> list[Seen]:
    """Each VEVENT as Home Assistant's strict ical reads it."""
    parsed = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(body.decode())
    return [
        (
            e.uid or "",
            e.summary or "",
            e.location or "",
            e.description or "",
            list(e.categories),
            _instant(e.dtstart),
            _instant(e.dtend) if e.dtend is not None else e.dtstart,
        )
        for e in parsed.events
    ]


def header_seen_by_icalendar(body: bytes) -> tuple[list[str], list[str]]:
    """The calendar's names and descriptions as icalendar reads them, RFC 7986's then Apple's.

    icalendar knows no type for NAME and the X-WR- properties and keeps them undecoded, so
    its own content-line parser decodes them here as the TEXT they are.
    """
    parsed = icalendar.Calendar.from_ical(body)

    def text(name: str) -> list[str]:
        value = parsed.get(name)
        if value is None:
            return []
        return [Contentline(f"{name}:{value.to_ical().decode()}").parts()[2]]

    return text("NAME") + text("X-WR-CALNAME"), text("DESCRIPTION") + text("X-WR-CALDESC")


def header_seen_by_ical(body: bytes) -> tuple[list[str], list[str]]:
    """The calendar's names and descriptions as Home Assistant's strict ical reads them."""
    parsed = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(body.decode())
    return parsed.name, parsed.description


class Store:
    """A revision store that keeps nothing between builds."""

    def revisions(self, _uids: Collection[str] | None = None) -> dict[str, Revision]:
        """No revision is stored: every event is new."""
        return {}

    def save_revisions(self, changed: Iterable[Revision]) -> dict[str, Revision]:
        """Forget ``changed``; it is what is stored, for this once."""
        return {r.uid: r for r in changed}


def published(cal: Calendar) -> publication.Publication:
    """The publication of ``cal`` alone."""
    return publication.build((cal,), OPTIONS, Store(), feeds.Renderer(), NOW)


def attachments(cal: Calendar) -> list[bytes]:
    """The attachment of each event of ``cal``, as its reminders carry it."""
    built = published(cal)
    return [built.attachment(e.uid) for e in cal.events]


# --- the feed -------------------------------------------------------------------------------


@settings(max_examples=60)
@given(cal=calendars())
@example(cal=EDGES)
def test_feed_keeps_the_byte_rules(cal: Calendar) -> None:
    """Every line of a feed is CRLF-ended, at most 75 octets and valid UTF-8 by itself."""
    assert wire_problems(render(cal)) == []


@settings(max_examples=60)
@given(cal=calendars())
@example(cal=EDGES)
def test_feed_has_exactly_its_events_and_properties(cal: Calendar) -> None:
    """No text adds a component or property: one VEVENT per event, each with its own set."""
    top = outline(render(cal))
    zones = len(zones_declared(cal.events))
    components = ["VTIMEZONE"] * zones + ["VEVENT"] * len(cal.events)
    assert [c.name for c in top.children] == components
    vevents = top.children[zones:]
    assert [sorted(v.properties) for v in vevents] == [event_properties(e) for e in cal.events]
    assert [v.children for v in vevents] == [[] for _ in cal.events]


@settings(max_examples=60)
@given(cal=calendars())
@example(cal=EDGES)
def test_icalendar_reads_the_records_back(cal: Calendar) -> None:
    """icalendar reads each event's text, categories and instants (or dates) as recorded."""
    assert seen_by_icalendar(render(cal)) == [expected(e) for e in cal.events]


@settings(max_examples=60)
@given(cal=calendars())
@example(cal=EDGES)
def test_ical_reads_the_records_back(cal: Calendar) -> None:
    """Home Assistant's strict ical reads each event as recorded too."""
    assert seen_by_ical(render(cal)) == [expected(e) for e in cal.events]


HEADER_PROPERTIES = ["VERSION", "PRODID", "CALSCALE", "METHOD", "NAME", "X-WR-CALNAME"]
HEADER_PROPERTIES += ["REFRESH-INTERVAL", "X-PUBLISHED-TTL"]


@settings(max_examples=30)
@given(cal=named())
def test_calendar_text_adds_no_calendar_property(cal: Calendar) -> None:
    """A calendar's name and description keep the byte rules and add no property."""
    body = published(cal).rendered[publication.ALL].body
    described = ["DESCRIPTION", "X-WR-CALDESC"] if cal.description.strip() else []
    assert wire_problems(body) == []
    assert sorted(outline(body).properties) == sorted(HEADER_PROPERTIES + described)


@settings(max_examples=30)
@given(cal=named())
def test_calendar_text_reads_back(cal: Calendar) -> None:
    """Both readers read a calendar's name and description as recorded."""
    body = published(cal).rendered[publication.ALL].body
    description = [cal.description.strip()] if cal.description.strip() else []
    assert header_seen_by_icalendar(body) == ([cal.name] * 2, description * 2)
    assert header_seen_by_ical(body) == ([cal.name], description)


SPANS = [
    (datetime(2026, 3, 20, 12, tzinfo=UTC), datetime(2026, 11, 10, 12, tzinfo=UTC)),
    (datetime(1970, 1, 1, 14, tzinfo=UTC), datetime(1970, 1, 1, 15, tzinfo=UTC)),
    (datetime(2100, 12, 31, 9, tzinfo=UTC), datetime(2100, 12, 31, 10, tzinfo=UTC)),
]
"""Across both DST seasons of 2026, and the first and last hours of 1970 to 2100 in any zone."""


@pytest.mark.parametrize("zone", ZONES)
def test_every_zone_reads_back(zone: str) -> None:
    """In every zone, a timed event reads back at its instants, in 2026 and at the range's ends."""
    for start, end in SPANS:
        cal = calendar({"id": "e", "title": "E", "timezone": zone, "start": start, "end": end})
        body = render(cal)
        want = [expected(e) for e in cal.events]
        assert (seen_by_icalendar(body), seen_by_ical(body)) == (want, want), start
        assert len(outline(body).children) == len(zones_declared(cal.events)) + 1


# --- the mail attachment --------------------------------------------------------------------


@settings(max_examples=40)
@given(cal=calendars())
@example(cal=EDGES)
def test_attachment_keeps_the_byte_rules(cal: Calendar) -> None:
    """Each attachment, whose calendar is named after its event, keeps the byte rules."""
    assert [wire_problems(body) for body in attachments(cal)] == [[] for _ in cal.events]


@settings(max_examples=40)
@given(cal=calendars())
@example(cal=EDGES)
def test_attachment_has_exactly_its_event(cal: Calendar) -> None:
    """An attachment holds its one VEVENT with its own properties, and the calendar's set."""
    for body, event in zip(attachments(cal), cal.events, strict=True):
        top = outline(body)
        zones = zones_declared([event])
        assert [c.name for c in top.children] == ["VTIMEZONE"] * len(zones) + ["VEVENT"]
        assert sorted(top.children[-1].properties) == event_properties(event)
        assert top.children[-1].children == []
        assert "DESCRIPTION" not in top.properties


@settings(max_examples=40)
@given(cal=calendars())
@example(cal=EDGES)
def test_attachment_reads_back_in_both_readers(cal: Calendar) -> None:
    """icalendar and ical read each attachment's event, and its calendar name, as recorded."""
    for body, event in zip(attachments(cal), cal.events, strict=True):
        assert (seen_by_icalendar(body), seen_by_ical(body)) == ([expected(event)],) * 2
        assert header_seen_by_icalendar(body) == ([event.title] * 2, [])
        assert header_seen_by_ical(body) == ([event.title], [])


# --- what never gets in ---------------------------------------------------------------------

CONTROLS = st.characters(categories=("Cc", "Zl", "Zp"))
"""Control characters and line and paragraph separators."""


@given(before=LINE, control=CONTROLS, after=LINE, name=st.sampled_from(["title", "location"]))
def test_control_characters_in_a_line_are_refused(
    before: str, control: str, after: str, name: str
) -> None:
    """A control character or line separator anywhere in a title or place is refused at load."""
    with pytest.raises(ValidationError, match="control character"):
        calendar(
            {"id": "e", "title": "E", "start": date(2026, 5, 1), name: before + control + after}
        )


@given(before=DESCRIPTION, control=CONTROLS.filter(lambda c: c not in "\n\t"), after=DESCRIPTION)
def test_control_characters_in_a_description_are_refused(
    before: str, control: str, after: str
) -> None:
    """A description takes newlines and tabs, and refuses every other control character."""
    # The "x" keeps a drawn CR from meeting an LF, a line break that a description takes.
    text = before + control + "x" + after
    with pytest.raises(ValidationError, match="control character"):
        calendar({"id": "e", "title": "E", "start": date(2026, 5, 1), "description": text})
