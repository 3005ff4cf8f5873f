"""Records: what they accept, what they refuse, and what they derive."""

from __future__ import annotations

import sys
import unicodedata
import zoneinfo
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from eventwatch import feeds, models, policy, revisions
from eventwatch.models import Calendar, Event, Offset, Recipient, ReminderPolicy, in_start_order

BRUSSELS = ZoneInfo("Europe/Brussels")
NOW = datetime(2026, 12, 3, tzinfo=UTC)


def event(**fields: Any) -> Event:  # noqa: ANN401
    """An event of calendar ``cal`` with the given fields over small defaults."""
    base: dict[str, Any] = {
        "calendar": "cal",
        "id": "e",
        "title": "E",
        "timezone": "Europe/Brussels",
        "start": date(2026, 7, 7),
    }
    return Event.model_validate(base | fields)


def error_of(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    """The one error message of a validation failure."""
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return str(errors[0]["msg"])


class TestOffset:
    """ISO 8601 durations for reminder offsets."""

    @pytest.mark.parametrize(
        ("text", "days", "seconds"),
        [
            ("P30D", 30, 0),
            ("P1W", 7, 0),
            ("PT2H", 0, 7200),
            ("PT90M", 0, 5400),
            ("P1DT12H", 1, 43200),
            ("p1d", 1, 0),
            ("PT0S", 0, 0),
        ],
    )
    def test_parses_days_and_exact_parts(self, text: str, days: int, seconds: int) -> None:
        """Weeks and days become wall-time days; hours, minutes and seconds stay exact."""
        assert Offset.parse(text) == Offset(days=days, seconds=seconds)

    @pytest.mark.parametrize("text", ["P1M", "P1Y", "1D", "P", "PT", "P1.5D", "-P1D", "P1DT", ""])
    def test_refuses_what_is_not_a_day_time_duration(self, text: str) -> None:
        """Months, years, fractions, negatives and empty forms are refused with an example."""
        with pytest.raises(ValueError, match="is not a duration like 'P30D'"):
            Offset.parse(text)

    @pytest.mark.parametrize(
        ("text", "canonical"),
        [("P1W", "P7D"), ("PT120M", "PT2H"), ("P1DT30M", "P1DT30M"), ("PT0S", "PT0S")],
    )
    def test_renders_canonically(self, text: str, canonical: str) -> None:
        """An offset prints in one canonical form, whatever form it was written in."""
        assert str(Offset.parse(text)) == canonical

    @pytest.mark.parametrize(
        ("start", "due", "hours"),
        [
            # Brussels moves to summer time on 29 March 2026: that day-before is 23 hours.
            (datetime(2026, 3, 29, 9, tzinfo=BRUSSELS), datetime(2026, 3, 28, 8, tzinfo=UTC), 23),
            # and back on 25 October 2026: 25 hours.
            (datetime(2026, 10, 25, 9, tzinfo=BRUSSELS), datetime(2026, 10, 24, 7, tzinfo=UTC), 25),
        ],
    )
    def test_whole_days_keep_the_wall_clock_across_dst(
        self,
        start: datetime,
        due: datetime,
        hours: int,
    ) -> None:
        """P1D before 09:00 is 09:00 the day before even when that day is 23 or 25 hours long."""
        got = Offset.parse("P1D").before(start)
        assert got == due
        assert got.astimezone(BRUSSELS).time() == time(9)
        assert (start - got).total_seconds() == hours * 3600

    def test_hours_are_exact_across_dst(self) -> None:
        """PT24H before an event the morning DST starts is 24 real hours, 08:00 local before."""
        start = datetime(2026, 3, 29, 9, 0, tzinfo=BRUSSELS)  # CEST, UTC+2
        assert Offset.parse("PT24H").before(start) == datetime(2026, 3, 28, 7, 0, tzinfo=UTC)
        assert Offset.parse("P1D").before(start) == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)


class TestEvent:
    """One event's fields and what follows from them."""

    def test_uid_depends_on_calendar_and_id_only(self) -> None:
        """Editing every other field leaves the UID as it was."""
        before = event()
        after = event(title="Other", start=date(2027, 1, 1), timezone="UTC", location="X")
        assert before.uid == after.uid == "cal/e@eventwatch"
        assert event(id="f").uid != before.uid

    def test_one_day_event_may_omit_end(self) -> None:
        """An all-day event without an end lasts its start day."""
        one = event()
        assert one.all_day
        assert (one.first_day, one.last_day) == (date(2026, 7, 7), date(2026, 7, 7))

    def test_all_day_end_is_the_last_day(self) -> None:
        """A two-day event written 7 to 8 July covers both days."""
        two = event(end=date(2026, 7, 8))
        assert (two.first_day, two.last_day) == (date(2026, 7, 7), date(2026, 7, 8))

    def test_local_times_take_the_event_zone(self) -> None:
        """A naive date-time from a file is read on the event's clock."""
        timed = event(start=datetime(2026, 2, 12, 10), end=datetime(2026, 2, 12, 12))
        assert timed.start == datetime(2026, 2, 12, 9, 0, tzinfo=UTC)
        assert timed.start.tzinfo == BRUSSELS
        assert not timed.all_day

    def test_aware_times_are_converted_to_the_event_zone(self) -> None:
        """A date-time with an offset keeps its instant and moves to the event's zone."""
        start = datetime(2026, 2, 12, 9, tzinfo=UTC)
        timed = event(start=start, end=datetime(2026, 2, 12, 10, tzinfo=UTC))
        assert timed.start == start
        assert timed.start.utcoffset() == BRUSSELS.utcoffset(datetime(2026, 2, 12))

    def test_timed_end_before_start_is_refused(self) -> None:
        """An end before the start names both."""
        with pytest.raises(ValidationError) as exc:
            event(start=datetime(2026, 2, 12, 10), end=datetime(2026, 2, 12, 9))
        assert "2026-02-12T09:00:00+01:00 is before start 2026-02-12T10:00:00+01:00" in error_of(
            exc
        )

    def test_all_day_end_before_start_is_refused(self) -> None:
        """A last day before the first day is refused."""
        with pytest.raises(ValidationError) as exc:
            event(end=date(2026, 7, 6))
        assert "2026-07-06 is before start 2026-07-07" in error_of(exc)

    def test_timed_event_needs_an_end(self) -> None:
        """Only all-day events may leave out the end."""
        with pytest.raises(ValidationError) as exc:
            event(start=datetime(2026, 2, 12, 10))
        assert "a timed event needs an end" in error_of(exc)

    def test_mixed_date_and_time_is_refused(self) -> None:
        """A date start with a date-time end is neither all-day nor timed."""
        with pytest.raises(ValidationError) as exc:
            event(end=datetime(2026, 7, 8, 10))
        assert "both be dates" in error_of(exc)

    def test_time_skipped_by_dst_is_refused(self) -> None:
        """02:30 on the night Brussels moves to summer time does not exist."""
        with pytest.raises(ValidationError) as exc:
            event(start=datetime(2026, 3, 29, 2, 30), end=datetime(2026, 3, 29, 4))
        assert "does not exist in Europe/Brussels" in error_of(exc)

    def test_unknown_zone_is_refused_with_a_suggestion(self) -> None:
        """A misspelt zone is named, with the zone it was probably meant to be."""
        with pytest.raises(ValidationError) as exc:
            event(timezone="Europe/Brusels")
        message = error_of(exc)
        assert "'Europe/Brusels' is not an IANA time zone" in message
        assert "'Europe/Brussels'" in message

    @pytest.mark.parametrize("field", ["title", "location", "description"])
    def test_control_characters_are_refused(self, field: str) -> None:
        """A bell character is refused in any text, descriptions included."""
        with pytest.raises(ValidationError) as exc:
            event(**{field: "a\x07b"})
        assert "U+0007" in error_of(exc)

    @pytest.mark.parametrize("field", ["title", "location"])
    def test_newlines_are_refused_outside_descriptions(self, field: str) -> None:
        """A newline would break a mail header or an iCalendar line."""
        with pytest.raises(ValidationError) as exc:
            event(**{field: "a\nb"})
        assert "U+000A" in error_of(exc)

    def test_descriptions_keep_newlines_and_tabs(self) -> None:
        """A description may hold paragraphs and tabs; CRLF becomes LF."""
        assert event(description="a\r\n\tb\nc").description == "a\n\tb\nc"

    @pytest.mark.parametrize("bad", ["Has Caps", "-lead", "trail-", "a--b", "x" * 65, "a_b"])
    def test_ids_are_slugs(self, bad: str) -> None:
        """Ids are lowercase words joined by single hyphens, so they fit in URLs and UIDs."""
        with pytest.raises(ValidationError) as exc:
            event(id=bad)
        assert "is not a valid id" in error_of(exc)

    def test_unknown_field_is_refused(self) -> None:
        """A typo in a key is an error, not silently dropped."""
        with pytest.raises(ValidationError) as exc:
            event(colour="red")
        assert exc.value.errors()[0]["type"] == "extra_forbidden"

    def test_records_are_frozen(self) -> None:
        """A record cannot be changed after validation."""
        with pytest.raises(ValidationError):
            event().title = "x"  # type: ignore[misc]

    def test_all_day_event_begins_at_the_anchor_time(self) -> None:
        """An all-day event's reminders count back from the anchor time on its first day."""
        begins = event().begins(time(9))
        assert begins == datetime(2026, 7, 7, 9, tzinfo=BRUSSELS)


class TestRecipientAndPolicy:
    """Recipients and reminder policies."""

    @pytest.mark.parametrize(
        "bad", ["not-an-address", "a@", "@b.org", "a b@c.org", "Ops <ops@c.org>"]
    )
    def test_malformed_addresses_are_refused(self, bad: str) -> None:
        """Only a bare, well-formed address is accepted."""
        with pytest.raises(ValidationError) as exc:
            Recipient(address=bad)
        assert "is not an e-mail address" in error_of(exc)

    def test_address_domain_is_normalised(self) -> None:
        """The domain part is lowercased; no DNS look-up is made."""
        assert Recipient(address="Ops@Example.ORG").address == "Ops@example.org"

    def test_repeated_offset_is_refused(self) -> None:
        """P1W and P7D are the same offset written twice."""
        with pytest.raises(ValidationError) as exc:
            ReminderPolicy.model_validate({"offsets": ["P7D", "P1W"]})
        assert "P7D repeats offsets[0]" in error_of(exc)

    def test_repeated_recipient_is_refused(self) -> None:
        """The same address twice in one list is a mistake (case does not matter)."""
        with pytest.raises(ValidationError) as exc:
            ReminderPolicy.model_validate(
                {"recipients": [{"address": "a@example.org"}, {"address": "A@example.org"}]},
            )
        assert "repeats recipients[0]" in error_of(exc)


class TestCalendar:
    """A calendar and the rules that span its events."""

    def calendar(self, *events: dict[str, Any]) -> Calendar:
        """A calendar ``cal`` in Brussels with the given event tables."""
        return Calendar.model_validate(
            {"id": "cal", "name": "Cal", "timezone": "Europe/Brussels", "events": list(events)},
        )

    def test_events_inherit_the_calendar_zone(self) -> None:
        """An event without a zone takes the calendar's; one with a zone keeps it."""
        cal = self.calendar(
            {"id": "a", "title": "A", "start": date(2026, 1, 1)},
            {"id": "b", "title": "B", "start": date(2026, 1, 1), "timezone": "Europe/Istanbul"},
        )
        assert [e.timezone for e in cal.events] == ["Europe/Brussels", "Europe/Istanbul"]
        assert {e.calendar for e in cal.events} == {"cal"}

    def test_duplicate_event_id_is_refused(self) -> None:
        """Two events with one id would share a UID."""
        with pytest.raises(ValidationError) as exc:
            self.calendar(
                {"id": "a", "title": "A", "start": date(2026, 1, 1)},
                {"id": "a", "title": "B", "start": date(2026, 1, 2)},
            )
        assert "'a' repeats events[0].id" in error_of(exc)

    def test_related_to_must_name_an_event(self) -> None:
        """A relation to an id the calendar lacks is refused."""
        with pytest.raises(ValidationError) as exc:
            self.calendar({"id": "a", "title": "A", "start": date(2026, 1, 1), "related_to": "zz"})
        assert "'zz' names no event in this calendar" in error_of(exc)

    def test_related_to_may_not_name_itself(self) -> None:
        """An event cannot be related to itself."""
        with pytest.raises(ValidationError) as exc:
            self.calendar({"id": "a", "title": "A", "start": date(2026, 1, 1), "related_to": "a"})
        assert "cannot relate to itself" in error_of(exc)

    def test_events_sort_by_the_instant_they_begin(self) -> None:
        """Across zones, an all-day event in Istanbul begins before one in Brussels that day."""
        cal = self.calendar(
            {
                "id": "late",
                "title": "L",
                "start": datetime(2026, 1, 1, 10),
                "end": datetime(2026, 1, 1, 11),
            },
            {"id": "ist", "title": "I", "start": date(2026, 1, 1), "timezone": "Europe/Istanbul"},
            {"id": "bru", "title": "B", "start": date(2026, 1, 1)},
        )
        assert [e.id for e in in_start_order([cal])] == ["ist", "bru", "late"]


def test_categories_may_not_hold_commas() -> None:
    """A comma in a category would split it in many clients."""
    with pytest.raises(ValidationError) as exc:
        event(categories=["a,b"])
    assert "may not contain a comma" in error_of(exc)


# --- the ends of every range --------------------------------------------------------------

ZONES = sorted((zoneinfo.available_timezones() | {"UTC"}) - {"localtime", "Factory"})
"""Every zone a record takes: the tz data's names but the machine's clock and the placeholder."""


class TestRanges:
    """The ends of each range a record accepts, and what lies just beyond them."""

    @pytest.mark.parametrize(
        "text", ["PT0S", "PT59S", "P0D", "P3661D", "P523W", "P1000000D", "P" + "9" * 30 + "D"]
    )
    def test_offsets_beyond_the_range_are_refused(self, text: str) -> None:
        """An offset under a minute or over ten years is refused, saying which end it passed."""
        with pytest.raises(ValidationError) as exc:
            ReminderPolicy.model_validate({"offsets": [text]})
        assert "too short" in error_of(exc) or "too long" in error_of(exc)

    @pytest.mark.parametrize("text", ["PT1M", "PT60S", "P3660D", "P522W", "P3659DT23H59M"])
    def test_offsets_at_the_ends_are_accepted(self, text: str) -> None:
        """One minute and 3,660 days, however written, are the ends of the range."""
        (offset,) = ReminderPolicy.model_validate({"offsets": [text]}).offsets or ()
        assert offset == Offset.parse(text)

    @pytest.mark.parametrize(
        "day", [date(1, 1, 1), date(1582, 12, 31), date(9999, 1, 1), date(9999, 12, 31)]
    )
    def test_days_beyond_the_range_are_refused(self, day: date) -> None:
        """An all-day event outside 1583 to 9998 is refused once, naming the range."""
        with pytest.raises(ValidationError) as exc:
            event(start=day)
        assert error_of(exc) == (
            f"Value error, {day.isoformat()} is out of range: events lie between 1583-01-01 "
            "and 9998-12-31"
        )

    @pytest.mark.parametrize("wall", ["0001-01-01T00:00:00", "9999-12-31T23:59:59"])
    def test_timed_events_beyond_the_range_are_refused(self, wall: str) -> None:
        """A timed event at the ends of Python's range is refused, not overflowed."""
        with pytest.raises(ValidationError, match="is out of range"):
            event(start=wall, end=wall)

    @pytest.mark.parametrize("line", ["title", "location"])
    def test_a_line_longer_than_the_limit_is_refused(self, line: str) -> None:
        """A title or place of more than 1,000 characters is refused with both numbers."""
        event(**{line: "x" * 1000})
        with pytest.raises(ValidationError) as exc:
            event(**{line: "x" * 1001})
        assert error_of(exc) == (
            "Value error, 1,001 characters is too long (at most 1,000 are allowed here)"
        )

    def test_a_description_longer_than_the_limit_is_refused(self) -> None:
        """A description of more than 65,536 characters is refused."""
        event(description="x" * 65_536)
        with pytest.raises(ValidationError, match="65,537 characters is too long"):
            event(description="x" * 65_537)


def _ends(zone: str) -> Calendar:
    """A calendar in ``zone`` with events on the first and last days, timed and all-day."""
    events = [
        {"id": "first-day", "title": "A", "start": "1583-01-01"},
        {"id": "first", "title": "B", "start": "1583-01-01T00:00:00", "end": "1583-01-01T00:01:00"},
        {"id": "last-day", "title": "C", "start": "9998-12-31"},
        {"id": "last", "title": "D", "start": "9998-12-31T23:58:00", "end": "9998-12-31T23:59:59"},
    ]
    return Calendar.model_validate(
        {
            "id": "ends",
            "name": "Ends",
            "timezone": zone,
            "reminders": {"offsets": ["P3660D", "PT1M"], "recipients": [{"address": "a@b.org"}]},
            "events": events,
        }
    )


@pytest.mark.parametrize("zone", ZONES)
def test_every_zone_plans_at_both_ends_of_the_range(zone: str) -> None:
    """In every zone the first and last days, timed and all-day, plan without overflow."""
    plan = policy.reminders((_ends(zone),), ReminderPolicy())
    assert len(plan) == 8
    assert all(r.due < r.starts for r in plan)


@pytest.mark.parametrize(
    "zone",
    ["UTC", "Europe/Brussels", "Africa/Casablanca", "America/St_Johns", "Pacific/Kiritimati"],
)
def test_feeds_at_both_ends_of_the_range_read_back(zone: str) -> None:
    """The events on the first and last days render and read back at their own instants."""
    calendar = _ends(zone)
    entries = [feeds.Entry(e, revisions.revise(e, None, NOW)) for e in calendar.events]
    body = feeds.Renderer().render(feeds.Header("Ends", "", timedelta(hours=1)), entries).body
    parsed = icalendar.Calendar.from_ical(body)
    found = {str(v["UID"]).split("/")[1].split("@")[0]: v for v in parsed.walk("VEVENT")}
    for event in calendar.events:
        start = found[event.id].decoded("DTSTART")
        if isinstance(event.start, datetime):
            assert start.astimezone(UTC) == event.start.astimezone(UTC)
        else:
            assert start == event.start


@pytest.mark.parametrize("name", ["localtime", "Factory"])
def test_names_that_are_not_zones_are_refused(name: str) -> None:
    """The machine's own clock and the tz data's placeholder are not zones a feed can name."""
    with pytest.raises(ValidationError, match="is not an IANA time zone"):
        event(timezone=name)


def test_fractions_of_a_second_are_refused() -> None:
    """iCalendar has no fractions of a second, so a time with one is refused, not rounded."""
    with pytest.raises(ValidationError, match="fractions of a second are not allowed"):
        event(start="2026-07-07T10:00:00.5", end="2026-07-07T11:00:00")


@pytest.mark.parametrize("text", ["09:00:00.5", "23:59:59.999999"])
def test_all_day_at_takes_whole_seconds_only(text: str) -> None:
    """A reminder anchor with a fraction of a second is refused, as event times are."""
    with pytest.raises(ValueError, match="whole seconds"):
        ReminderPolicy.model_validate({"all_day_at": text})


_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Zl", "Zp"})
"""What the check refused before it was one expression: Unicode's control categories."""


def _by_category(value: str, allowed: str = "") -> str | None:
    """The message the per-character check of before gave for ``value``; None if it passed."""
    for char in value:
        if char not in allowed and unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            where = "here" if not allowed else "here (only newlines and tabs are)"
            return f"control character U+{ord(char):04X} is not allowed {where}"
    return None


def _refusal(value: str, *, text: bool) -> str | None:
    """What the check of today says of ``value``; None if it passes."""
    try:
        models._refuse_controls(value, text=text)  # noqa: SLF001 - the rule itself is the point
    except ValueError as exc:
        return str(exc)
    return None


class TestControlCharacters:
    """The control-character check refuses exactly what the per-character lookup refused."""

    @pytest.mark.parametrize("allowed", ["", "\n\t"], ids=["line", "text"])
    def test_every_code_point_is_judged_as_by_its_category(self, allowed: str) -> None:
        """All 1,114,112 code points, one by one, in a line and in free text."""
        differ = [
            code
            for code in range(sys.maxunicode + 1)
            if _refusal(chr(code), text=bool(allowed)) != _by_category(chr(code), allowed)
        ]
        assert differ == []

    @given(st.text(st.characters(codec="utf-8") | st.sampled_from("\n\t\x00\x85\u2028\u2029")))
    def test_any_text_gets_the_same_verdict_and_message(self, value: str) -> None:
        """Arbitrary strings, controls mixed in: the same first character named, or none."""
        assert _refusal(value, text=False) == _by_category(value)
        assert _refusal(value, text=True) == _by_category(value, "\n\t")


@given(
    st.lists(st.tuples(st.integers(0, 11), st.integers(0, 3)), min_size=34, max_size=80),
    st.lists(st.sampled_from(["edit", "add", "remove", "keep"]), min_size=1, max_size=6),
)
def test_the_order_from_an_earlier_one_is_the_sorted_order(
    starts: list[tuple[int, int]], steps: list[str]
) -> None:
    """Events kept from an earlier order, with others put in their places, sort as all do.

    Enough events that a few changes are put in place (past 32 kept a change), or many sorted.
    """
    current = [
        Event.model_validate(
            {"calendar": f"c{n % 3}", "id": f"e{n}", "title": "T", "timezone": "UTC",
             "start": datetime(2026, 5, 1 + day, hour, tzinfo=UTC),
             "end": datetime(2026, 5, 1 + day, hour + 1, tzinfo=UTC)}
        )
        for n, (day, hour) in enumerate(starts)
    ]  # fmt: skip
    known: list[Event] = []
    for n, step in enumerate(steps):
        if step == "edit":
            old = current.pop(n % len(current))
            moved = timedelta(hours=n)
            current.append(
                old.model_copy(update={"start": old.start + moved, "end": old.end + moved})
            )
        elif step == "add":
            current.append(current[0].model_copy(update={"id": f"new{n}"}))
        elif step == "remove" and len(current) > 1:
            current.pop(0)
        cals = [
            Calendar.model_construct(id=c, events=tuple(e for e in current if e.calendar == c))
            for c in ("c0", "c1", "c2")
        ]
        made = in_start_order(cals, known)
        assert [id(e) for e in made] == [id(e) for e in in_start_order(cals)]
        known = made
