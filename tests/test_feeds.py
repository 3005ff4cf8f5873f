"""Feeds as subscribers' clients read them: parsed back by independent readers, byte rules held."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import ical.calendar_stream
import icalendar
import pytest
import vobject
from hypothesis import given
from hypothesis import strategies as st
from icalendar.parser import Contentline

from eventwatch import calendars, feeds, files, publication, revisions, wording
from eventwatch.ledger import Ledger
from eventwatch.models import Calendar
from eventwatch.settings import ReminderDefaults

from .conftest import SHIPPED_CALENDARS
from .helpers import HEADER, calendar, entries_of, render

TRICKY = 'Comma, semicolon; backslash \\ quote " colon: é ß Ж 中文 😀🇧🇪'


@pytest.fixture(scope="module")
def shipped() -> bytes:
    """The feed of the shipped NATO calendar."""
    return render(*calendars.load(SHIPPED_CALENDARS))


class TestShippedFeed:
    """The NATO feed as three independent readers see it."""

    def test_ical_reads_the_three_events(self, shipped: bytes) -> None:
        """Home Assistant's strict ical parser gives the UIDs and exclusive all-day ends."""
        parsed = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(shipped.decode())
        found = {e.uid: (e.dtstart, e.dtend) for e in parsed.events}
        assert found == {
            "nato-2026/defence-ministers-2026-02@eventwatch": (
                date(2026, 2, 12),
                date(2026, 2, 13),
            ),
            "nato-2026/nato-ukraine-council-2026-02@eventwatch": (
                date(2026, 2, 12),
                date(2026, 2, 13),
            ),
            "nato-2026/summit-2026-07@eventwatch": (date(2026, 7, 7), date(2026, 7, 9)),
        }

    def test_vobject_reads_the_same(self, shipped: bytes) -> None:
        """vobject agrees on UIDs, dates, places and status."""
        parsed = vobject.readOne(shipped.decode())
        found = {
            v.uid.value: (v.dtstart.value, v.dtend.value, v.location.value, v.status.value)
            for v in parsed.vevent_list
        }
        assert found["nato-2026/summit-2026-07@eventwatch"] == (
            date(2026, 7, 7),
            date(2026, 7, 9),
            "Ankara, Türkiye",
            "CONFIRMED",
        )
        assert len(found) == 3

    def test_icalendar_reads_calendar_properties(self, shipped: bytes) -> None:
        """icalendar sees the calendar's name, method and refresh interval."""
        parsed = icalendar.Calendar.from_ical(shipped)
        assert str(parsed["X-WR-CALNAME"]) == str(parsed["NAME"]) == "Test"
        assert str(parsed["METHOD"]) == "PUBLISH"
        assert str(parsed["CALSCALE"]) == "GREGORIAN"
        assert parsed["PRODID"].startswith("-//eventwatch//eventwatch ")
        assert b"REFRESH-INTERVAL;VALUE=DURATION:PT1H\r\n" in shipped
        assert b"X-PUBLISHED-TTL:PT1H\r\n" in shipped

    def test_description_holds_agenda_participants_and_sources(self, shipped: bytes) -> None:
        """The ministerial's DESCRIPTION reads as plain text with participants and sources."""
        parsed = icalendar.Calendar.from_ical(shipped)
        event = next(e for e in parsed.walk("VEVENT") if "defence-ministers" in str(e["UID"]))
        text = str(event["DESCRIPTION"])
        assert "chaired by NATO Secretary General Mark Rutte" in text
        assert "Participants:\n- Mark Rutte, NATO Secretary General, chair" in text
        assert "Sources:\n- RksNews: NATO Ministers to Meet in Brussels" in text

    def test_council_relates_to_the_ministerial(self, shipped: bytes) -> None:
        """RELATED-TO carries the ministerial's UID."""
        parsed = icalendar.Calendar.from_ical(shipped)
        council = next(e for e in parsed.walk("VEVENT") if "council" in str(e["UID"]))
        assert str(council["RELATED-TO"]) == "nato-2026/defence-ministers-2026-02@eventwatch"

    def test_all_day_events_need_no_vtimezone(self, shipped: bytes) -> None:
        """Dates carry no zone, so no VTIMEZONE is declared."""
        assert b"BEGIN:VTIMEZONE" not in shipped


class TestWireRules:
    """What the bytes must look like, whatever a parser forgives."""

    @pytest.fixture
    def body(self) -> bytes:
        """A feed with long, multi-byte text in two zones."""
        return render(
            calendar(
                {
                    "id": "long",
                    "title": "é" * 100 + "😀" * 40,
                    "description": TRICKY * 10,
                    "start": datetime(2026, 3, 29, 10),
                    "end": datetime(2026, 3, 29, 12),
                },
                {
                    "id": "ny",
                    "title": "New York",
                    "timezone": "America/New_York",
                    "start": datetime(2026, 11, 1, 1, 30),
                    "end": datetime(2026, 11, 1, 3, 0),
                },
            ),
        )

    def test_lines_end_in_crlf(self, body: bytes) -> None:
        """Every line ends with CRLF and no bare LF is left."""
        assert body.endswith(b"\r\n")
        assert body.count(b"\n") == body.count(b"\r\n")

    def test_lines_are_folded_at_75_octets(self, body: bytes) -> None:
        """No physical line exceeds 75 octets, and folds start with a space."""
        lines = body.split(b"\r\n")[:-1]
        assert max(len(line) for line in lines) <= 75
        assert any(line.startswith(b" ") for line in lines)

    def test_folds_never_split_a_character(self, body: bytes) -> None:
        """Each physical line is valid UTF-8 by itself."""
        for line in body.split(b"\r\n"):
            line.decode("utf-8")

    def test_every_tzid_has_a_vtimezone(self, body: bytes) -> None:
        """Each TZID parameter names a VTIMEZONE in the same feed."""
        text = body.decode()
        used = {part.split(":")[0].split(";")[0] for part in text.split("TZID=")[1:]}
        declared = {line[5:] for line in text.split("\r\n") if line.startswith("TZID:")}
        assert used == declared == {"Europe/Brussels", "America/New_York"}

    def test_timed_instants_survive(self, body: bytes) -> None:
        """ical and vobject read the same instants as the records hold, DST day included."""
        parsed = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(body.decode())
        starts = {e.uid: e.dtstart.astimezone(UTC) for e in parsed.events}
        assert starts == {
            "cal/long@eventwatch": datetime(2026, 3, 29, 8, 0, tzinfo=UTC),
            "cal/ny@eventwatch": datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        }
        other = vobject.readOne(body.decode())
        assert {v.uid.value: v.dtstart.value.astimezone(UTC) for v in other.vevent_list} == starts


class TestText:
    """Text survives the round trip exactly."""

    @pytest.fixture
    def body(self) -> bytes:
        """One event whose every text field is tricky."""
        return render(
            calendar(
                {
                    "id": "t",
                    "title": TRICKY,
                    "location": TRICKY,
                    "description": TRICKY + "\nsecond line\n\ttabbed",
                    "categories": ["c;d", "back\\slash", "é😀"],
                    "start": date(2026, 5, 1),
                },
            ),
        )

    def test_ical_round_trip(self, body: bytes) -> None:
        """Home Assistant's ical reads back every character."""
        (event,) = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(body.decode()).events
        assert event.summary == TRICKY
        assert event.location == TRICKY
        assert event.description == TRICKY + "\nsecond line\n\ttabbed"
        assert event.categories == ["c;d", "back\\slash", "é😀"]

    def test_vobject_round_trip(self, body: bytes) -> None:
        """vobject reads back every character too."""
        event = vobject.readOne(body.decode()).vevent
        assert event.summary.value == TRICKY
        assert event.location.value == TRICKY
        assert event.description.value == TRICKY + "\nsecond line\n\ttabbed"

    def test_icalendar_round_trip(self, body: bytes) -> None:
        """And icalendar, the writer, agrees with both."""
        event = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
        assert str(event["SUMMARY"]) == TRICKY
        assert [str(c) for c in event["CATEGORIES"].cats] == ["c;d", "back\\slash", "é😀"]


class TestEvents:
    """Per-event properties."""

    def test_rendering_is_deterministic(self) -> None:
        """The same records and revisions give the same bytes from a fresh renderer."""
        cal = calendars.load(SHIPPED_CALENDARS)
        assert render(*cal) == render(*cal)

    def test_revision_is_rendered(self) -> None:
        """SEQUENCE, DTSTAMP and LAST-MODIFIED come from the revision."""
        cal = calendar({"id": "a", "title": "A", "start": date(2026, 5, 1)})
        event = cal.events[0]
        revision = revisions.Revision(
            event.uid, 4, "m", "c", datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
        )
        body = feeds.Renderer().render(HEADER, [feeds.Entry(event, revision)]).body
        parsed = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
        assert parsed["SEQUENCE"] == 4
        assert parsed["DTSTAMP"].dt == parsed["LAST-MODIFIED"].dt == revision.modified

    def test_cancelled_events_stay_as_cancelled(self) -> None:
        """A cancelled event is published with STATUS:CANCELLED, so clients remove it."""
        body = render(
            calendar({"id": "a", "title": "A", "start": date(2026, 5, 1), "status": "cancelled"})
        )
        assert b"STATUS:CANCELLED\r\n" in body

    def test_alarms_mirror_the_offsets(self) -> None:
        """Given triggers become DISPLAY alarms; without them there is no VALARM."""
        cal = calendar({"id": "a", "title": "A", "start": date(2026, 5, 1)})
        assert b"VALARM" not in render(cal)
        body = render(cal, alarms=(timedelta(hours=-15), timedelta(days=-7)))
        parsed = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
        triggers = [alarm["TRIGGER"].dt for alarm in parsed.walk("VALARM")]
        assert triggers == [timedelta(hours=-15), timedelta(days=-7)]

    def test_url_is_rendered_when_set(self) -> None:
        """An event's URL becomes its URL property."""
        body = render(
            calendar(
                {"id": "a", "title": "A", "start": date(2026, 5, 1), "url": "https://example.org/a"}
            ),
        )
        assert b"URL:https://example.org/a\r\n" in body

    def test_edit_re_encodes_only_that_event(self) -> None:
        """A renderer reuses every cached event and encodes only the edited one."""
        renderer = feeds.Renderer()
        before = calendar(
            {"id": "a", "title": "A", "start": date(2026, 5, 1)},
            {"id": "b", "title": "B", "start": date(2026, 5, 2)},
        )
        renderer.render(HEADER, entries_of(before))
        cached = dict(renderer._events)  # noqa: SLF001 - the cache is what is under test
        after = calendar(
            {"id": "a", "title": "A", "start": date(2026, 5, 1)},
            {"id": "b", "title": "B edited", "start": date(2026, 5, 2)},
        )
        renderer.render(HEADER, entries_of(after))
        assert len(renderer._events) == 3  # noqa: SLF001
        assert set(cached) < set(renderer._events)  # noqa: SLF001

    def test_dtstart_keeps_the_events_zone(self) -> None:
        """A timed event is written in its own zone, not converted to UTC."""
        body = render(
            calendar(
                {
                    "id": "a",
                    "title": "A",
                    "start": datetime(2026, 2, 12, 10),
                    "end": datetime(2026, 2, 12, 12),
                }
            ),
        )
        assert b"DTSTART;TZID=Europe/Brussels:20260212T100000\r\n" in body
        parsed = icalendar.Calendar.from_ical(body).walk("VEVENT")[0]
        assert parsed["DTSTART"].dt == datetime(2026, 2, 12, 10, tzinfo=ZoneInfo("Europe/Brussels"))


class TestUtc:
    """Times in UTC, and the one local time that only UTC can name."""

    @pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "Zulu", "GMT", "Etc/GMT"])
    def test_utc_times_end_in_z(self, zone: str) -> None:
        """A time in UTC, under any of its names, is written with a Z and needs no VTIMEZONE."""
        body = render(
            calendar(
                {
                    "id": "a",
                    "title": "A",
                    "timezone": zone,
                    "start": datetime(2026, 12, 10, 10),
                    "end": datetime(2026, 12, 10, 12),
                },
            ),
        )
        assert b"DTSTART:20261210T100000Z\r\n" in body
        assert b"DTEND:20261210T120000Z\r\n" in body
        assert b"TZID" not in body
        assert b"VTIMEZONE" not in body

    def test_the_second_of_a_repeated_time_is_written_in_utc(self) -> None:
        """Of the two 01:30s of the night New York's clocks go back, the second is in UTC."""
        body = render(
            calendar(
                {
                    "id": "first",
                    "title": "First",
                    "timezone": "America/New_York",
                    "start": datetime(2026, 11, 1, 1, 30),
                    "end": datetime(2026, 11, 1, 3),
                },
                {
                    "id": "second",
                    "title": "Second",
                    "timezone": "America/New_York",
                    "start": datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
                    "end": datetime(2026, 11, 1, 3),
                },
            ),
        )
        starts = [line for line in body.split(b"\r\n") if line.startswith(b"DTSTART;TZID=A")]
        assert starts == [b"DTSTART;TZID=America/New_York:20261101T013000"]
        assert b"DTSTART:20261101T063000Z\r\n" in body


def test_calendar_name_and_description_are_text() -> None:
    """A feed's name and description are escaped as TEXT: no comma, newline or backslash raw."""
    header = feeds.Header("a,b;c\\d", "x\ny, z", timedelta(hours=1))
    body = feeds.Renderer().render(header, []).body
    assert b"\r\nNAME:a\\,b\\;c\\\\d\r\nX-WR-CALNAME:a\\,b\\;c\\\\d\r\n" in body
    assert b"\r\nX-WR-CALDESC:x\\ny\\, z\r\n" in body


def reference_vevent(entry: feeds.Entry) -> icalendar.Event:
    """The same event built with icalendar's own object model, as the reference."""
    event, revision = entry.event, entry.revision
    component = icalendar.Event()
    component.add("uid", event.uid)
    component.add("dtstamp", revision.modified)
    component.add("dtstart", event.start)
    end = event.end if isinstance(event.end, datetime) else event.last_day + timedelta(days=1)
    component.add("dtend", end)
    component.add("summary", event.title)
    text = wording.description(event)
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
        component.add("related-to", f"{event.calendar}/{event.related_to}@eventwatch")
    component.add("sequence", revision.sequence)
    component.add("last-modified", revision.modified)
    if event.all_day:
        component.add("transp", "TRANSPARENT")
    for trigger in entry.alarms:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", event.title)
        alarm.add("trigger", trigger)
        component.add_component(alarm)
    return component


def _comparable(component: icalendar.Component) -> object:
    """A component's properties and sub-components, in a form that compares by value."""
    properties = sorted((name, component[name].to_ical()) for name in component)
    return properties, [_comparable(sub) for sub in component.subcomponents]


def test_encoding_parses_equal_to_icalendars_own() -> None:
    """Each VEVENT, assembled from icalendar's encoded values, parses equal to its object model."""
    cal = Calendar.model_validate(
        {
            "id": "cal",
            "name": "Cal",
            "timezone": "Europe/Brussels",
            "events": [
                {
                    "id": "a",
                    "title": TRICKY,
                    "description": TRICKY * 5 + "\nline",
                    "location": TRICKY,
                    "categories": ["c;d", "é😀"],
                    "start": datetime(2026, 3, 29, 10),
                    "end": datetime(2026, 3, 29, 12),
                    "url": "https://example.org/x?y=1",
                    "participants": [{"name": "Mark Rutte", "role": "chair"}],
                    "sources": [
                        {"publisher": "RksNews", "title": "T", "published": date(2026, 2, 11)}
                    ],
                },
                {
                    "id": "b",
                    "title": "B",
                    "start": date(2026, 7, 7),
                    "end": date(2026, 7, 8),
                    "timezone": "Europe/Istanbul",
                    "related_to": "a",
                    "status": "tentative",
                },
                {
                    "id": "c",
                    "title": "C",
                    "start": datetime(2026, 12, 10, 10),
                    "end": datetime(2026, 12, 10, 12),
                    "timezone": "UTC",
                },
                {
                    "id": "d",
                    "title": "D",
                    "start": datetime(2026, 12, 10, 10),
                    "end": datetime(2026, 12, 10, 12),
                    "timezone": "Etc/GMT",
                },
            ],
        },
    )
    entries = entries_of(cal, alarms=(timedelta(hours=-15), timedelta(days=-1, minutes=-30)))
    ours = icalendar.Calendar.from_ical(feeds.Renderer().render(HEADER, entries).body)
    for entry, parsed in zip(entries, ours.walk("VEVENT"), strict=True):
        reference = icalendar.Calendar.from_ical(
            b"BEGIN:VCALENDAR\r\n" + reference_vevent(entry).to_ical() + b"END:VCALENDAR\r\n",
        ).walk("VEVENT")[0]
        assert _comparable(parsed) == _comparable(reference)


# -- the golden feed: 1,000 events through the whole path, bytes fixed before issue 13 --------

GOLDEN = Path(__file__).parent / "golden" / "feed-1000.ics.gz"
"""The feed ``_golden_calendar`` renders, made with the code before the work of issue 13."""

_WORDS = (
    "ministers", "summit", "défense", "Brüssel", "Ankara", "Türkiye", "délégation", "agenda",
    "deterrence", "KFOR", "Kyiv", "Київ", "sécurité", "cooperation", "industrial", "€5bn",
    "naïve", "Ελλάδα", "東京", "🇺🇦", "a\\\\b", '"quoted"', "semi;colon", "comma,here",
)  # fmt: skip
_ZONES = ("Europe/Brussels", "Europe/Istanbul", "America/New_York", "UTC", "Asia/Kolkata")


def _golden_calendar() -> str:
    """A calendar file of 1,000 events, the same every time.

    Every tenth is all-day (some of several days), the rest timed in five zones, with
    ~600-character descriptions with commas, semicolons, accents, emoji and line breaks,
    participants, sources, three statuses, and three alarms each.
    """
    rng = random.Random(13)  # noqa: S311 - repeatable test data, not security
    lines = [
        'name = "Golden, 1,000 events; ünïcode"',
        'description = "The feed of issue 13\\u0027s golden test.\\nSecond line."',
        'timezone = "Europe/Brussels"',
        "[reminders]",
        'offsets = ["P7D", "PT15H", "P1DT30M"]',
        'recipients = [{ address = "duty@example.org" }]',
    ]
    for n in range(1000):
        day = date(2026, 1, 1) + timedelta(days=n % 730)
        text = ""
        while len(text) < 600:
            text += " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 9)))
            text += rng.choice([", ", "; ", ". ", ".\n", "\n\n"])
        event = {
            "id": f"event-{n}",
            "title": f"Meeting {n}: {rng.choice(_WORDS)}, {rng.choice(_WORDS)}",
            "description": text.strip(),
            "location": f"Room {n % 50}; {rng.choice(_WORDS)}, {rng.choice(_WORDS)}",
            "categories": [rng.choice(["summit", "ministerial", "defence"])],
            "status": ["confirmed", "tentative", "cancelled"][n % 7 % 3],
        }
        if n % 10 == 0:
            start, end = day.isoformat(), (day + timedelta(days=n % 3)).isoformat()
            zone = None
        else:
            start = f"{day.isoformat()}T{8 + n % 9:02d}:{(n % 4) * 15:02d}:00"
            end = f"{day.isoformat()}T{10 + n % 9:02d}:{(n % 4) * 15:02d}:00"
            zone = _ZONES[n % len(_ZONES)]
        lines.append("\n[[events]]")
        lines += [
            f"{key} = {json.dumps(value, ensure_ascii=False)}" for key, value in event.items()
        ]
        lines += [f"start = {start}", f"end = {end}"]
        if zone is not None:
            lines.append(f'timezone = "{zone}"')
        if n % 5 == 0:
            lines.append('participants = [{ name = "Mark Rutte", role = "chair; NATO, SG" }]')
        if n % 11 == 0:
            lines.append(
                'sources = [{ publisher = "UNN", title = "Київ, ministers", '
                'published = 2026-01-05, url = "https://example.org/a?b=c,d;e" }]'
            )
    return "\n".join(lines) + "\n"


def _golden_feed(folder: Path) -> tuple[bytes, bytes]:
    """The whole path, file to bytes, at a fixed instant: cold, then again with the cache warm."""
    (folder / "calendars").mkdir()
    (folder / "calendars" / "golden.toml").write_text(_golden_calendar(), encoding="utf-8")
    found = calendars.load(folder / "calendars")
    options = publication.Options(timedelta(hours=6), alarms=True, defaults=ReminderDefaults())
    ledger = Ledger.in_folder(folder / "state")
    try:
        renderer = feeds.Renderer()
        cold = publication.build(found, options, ledger, renderer, GOLDEN_NOW)
        warm = publication.build(found, options, ledger, renderer, GOLDEN_NOW)
    finally:
        ledger.close()
    return cold.rendered[publication.ALL].body, warm.rendered[publication.ALL].body


GOLDEN_NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("through", ["bytes.join", "a file in memory"])
def test_the_feed_of_1000_events_is_byte_for_byte_the_golden_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through: str
) -> None:
    """A thousand events, file to feed, give the bytes kept before the path was made fast.

    Joined as a small feed is, or as a large one is (``files.join``).
    """
    if through == "a file in memory":
        monkeypatch.setattr(files, "THROUGH_MEMORY_FILE", 0)
    cold, warm = _golden_feed(tmp_path)
    expected = gzip.decompress(GOLDEN.read_bytes())
    assert cold.count(b"BEGIN:VEVENT") == 1000
    for made in (cold, warm):
        if made != expected:
            for number, (got, want) in enumerate(
                zip(made.split(b"\r\n"), expected.split(b"\r\n"), strict=False), 1
            ):
                assert got == want, f"line {number}"
        assert made == expected


# -- folding: ours, on bytes, against icalendar's ---------------------------------------------

_TRICKY = '\\^,;:"é€😀Київ東\t '
"""Escapes, separators and characters of 2, 3 and 4 octets, where a fold may land."""


def _icalendar_fold(line: bytes) -> bytes:
    """What icalendar makes of a content line longer than 75 octets."""
    return bytes(Contentline(line.decode()).to_ical()) + b"\r\n"


@given(
    st.sampled_from(["SUMMARY", "DESCRIPTION", "LOCATION;LANGUAGE=fr", "X"]),
    st.text(
        st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")) | st.sampled_from(_TRICKY),
        max_size=600,
    ),
)
def test_folding_is_icalendars_for_any_text(name: str, text: str) -> None:
    """Any value, folded on bytes, gives icalendar's folding; a line of 75 octets stays whole."""
    line = name.encode() + b":" + bytes(icalendar.vText(text).to_ical())
    folded = feeds._fold(line)  # noqa: SLF001 - the folding itself is the point
    assert folded == (line + b"\r\n" if len(line) <= 75 else _icalendar_fold(line))
    for physical in folded[:-2].split(b"\r\n"):
        assert len(physical) <= 75
        physical.decode("utf-8")  # never cut inside a character
    assert folded[:-2].replace(b"\r\n ", b"") == line


@pytest.mark.parametrize("size", range(70, 160))
@pytest.mark.parametrize("tail", ["\\\\", "^", "é", "€", "😀", "a"])
def test_folding_at_every_boundary(size: int, tail: str) -> None:
    """Lines of 70 to 159 octets ending in each kind of character fold as icalendar's do."""
    head = "x" * max(0, size - len(tail.encode()) - 2)
    line = f"X:{head}{tail * 3}".encode()
    expected = line + b"\r\n" if len(line) <= 75 else _icalendar_fold(line)
    assert feeds._fold(line) == expected  # noqa: SLF001 - the folding itself is the point


def test_every_line_of_a_feed_is_at_most_75_octets_of_utf8(tmp_path: Path) -> None:
    """The golden feed's every physical line: at most 75 octets, whole UTF-8 characters."""
    cold, _ = _golden_feed(tmp_path)
    for line in cold.split(b"\r\n"):
        assert len(line) <= 75
        line.decode("utf-8")
