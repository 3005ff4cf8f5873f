"""How an event's date, time, place and description read on the page, in the mail and in lines."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventwatch import wording
from eventwatch.models import FIRST_DAY, LAST_DAY, Calendar, Offset, is_zone

if TYPE_CHECKING:
    from eventwatch.models import Event

ZONES = sorted({name for name in zoneinfo.available_timezones() if is_zone(name)} | {"UTC"})
"""Every zone a calendar file may name."""


def event(**fields: Any) -> Event:  # noqa: ANN401
    """One event of an Istanbul calendar: the summit, all day on 7 July 2026, unless told."""
    table = {
        "id": "summit",
        "title": "NATO Summit 2026",
        "start": date(2026, 7, 7),
        "timezone": "Europe/Istanbul",
    } | fields
    calendar = Calendar.model_validate(
        {"id": "nato", "name": "NATO", "timezone": "Europe/Istanbul", "events": [table]}
    )
    return calendar.events[0]


def timed(start: datetime, end: datetime, **fields: Any) -> Event:  # noqa: ANN401
    """A timed event from ``start`` to ``end`` (local to its zone when naive)."""
    return event(start=start, end=end, **fields)


# --- the long form: the index page and the mail body -----------------------------------------


def test_a_day_is_spelt_out() -> None:
    """A day reads with its weekday, the day, the month in full and the year."""
    assert wording.day(date(2026, 7, 7)) == "Tue 7 July 2026"


def test_a_single_all_day_event_reads_as_its_day() -> None:
    """An all-day event on one day reads as that day alone, with no zone."""
    assert wording.when(event()) == "Tue 7 July 2026"


def test_days_in_one_month_share_the_month() -> None:
    """An all-day event over days of one month names the month and year once, with an en dash."""
    assert wording.when(event(end=date(2026, 7, 8))) == "7\u20138 July 2026"


def test_days_across_months_read_in_full() -> None:
    """An all-day event across a month's end spells both days out, an en dash between."""
    made = wording.when(event(start=date(2026, 6, 30), end=date(2026, 7, 1)))
    assert made == "Tue 30 June 2026 \u2013 Wed 1 July 2026"


def test_days_across_years_read_in_full() -> None:
    """An all-day event across New Year spells both days out, each with its own year."""
    made = wording.when(event(start=date(2026, 12, 31), end=date(2027, 1, 1)))
    assert made == "Thu 31 December 2026 \u2013 Fri 1 January 2027"


def test_same_month_of_another_year_reads_in_full() -> None:
    """July of one year to July of the next is not shortened to one month."""
    made = wording.when(event(start=date(2026, 7, 7), end=date(2027, 7, 8)))
    assert made == "Tue 7 July 2026 \u2013 Thu 8 July 2027"


def test_a_timed_event_reads_its_range_and_zone() -> None:
    """A timed event on one day reads as its day, its times with an en dash, and its zone."""
    made = wording.when(timed(datetime(2026, 7, 7, 10), datetime(2026, 7, 7, 12)))
    assert made == "Tue 7 July 2026 10:00\u201312:00 (Europe/Istanbul)"


def test_a_timed_event_across_midnight_names_its_last_day() -> None:
    """A timed event that runs past midnight names the day it ends on."""
    made = wording.when(timed(datetime(2026, 7, 7, 22, 30), datetime(2026, 7, 8, 1)))
    assert made == "Tue 7 July 2026 22:30 \u2013 Wed 8 July 2026 01:00 (Europe/Istanbul)"


def test_a_timed_event_ending_at_midnight_stays_on_its_day() -> None:
    """An event that ends at the midnight after its day does not cover the next day."""
    made = wording.when(timed(datetime(2026, 7, 7, 20), datetime(2026, 7, 8, 0)))
    assert made == "Tue 7 July 2026 20:00\u201300:00 (Europe/Istanbul)"


def test_a_timed_event_reads_on_its_own_clock() -> None:
    """A start written in UTC reads on the clock of the event's zone."""
    made = wording.when(timed(datetime(2026, 7, 7, 7, tzinfo=UTC), datetime(2026, 7, 7, 12)))
    assert made == "Tue 7 July 2026 10:00\u201312:00 (Europe/Istanbul)"


def test_the_first_and_last_days_allowed_read() -> None:
    """An all-day event from the first day a file may hold to the last reads in full."""
    made = wording.when(event(start=FIRST_DAY, end=LAST_DAY))
    assert made == "Sat 1 January 1583 \u2013 Thu 31 December 9998"


# --- the recipient's clock --------------------------------------------------------------------


def test_a_recipient_elsewhere_sees_the_start_on_their_clock() -> None:
    """A recipient in another zone sees the start in that zone, its abbreviation and its name."""
    made = wording.when_in(
        timed(datetime(2026, 7, 7, 10), datetime(2026, 7, 7, 12)), "America/New_York"
    )
    assert made == "Tue 7 July 2026 03:00 EDT (America/New_York)"


def test_a_recipients_clock_may_show_another_day() -> None:
    """On the recipient's clock the event may begin on the day before its own."""
    made = wording.when_in(
        timed(datetime(2026, 7, 7, 1), datetime(2026, 7, 7, 2)), "America/New_York"
    )
    assert made == "Mon 6 July 2026 18:00 EDT (America/New_York)"


def test_a_recipient_without_a_zone_gets_nothing_more() -> None:
    """A recipient with no zone of their own gets no second time."""
    assert wording.when_in(timed(datetime(2026, 7, 7, 10), datetime(2026, 7, 7, 12)), None) is None


def test_a_recipient_in_the_events_zone_gets_nothing_more() -> None:
    """A recipient in the event's own zone gets no second time: it would say the same."""
    made = wording.when_in(
        timed(datetime(2026, 7, 7, 10), datetime(2026, 7, 7, 12)), "Europe/Istanbul"
    )
    assert made is None


def test_an_all_day_event_has_no_other_clock() -> None:
    """An all-day event's dates are the same everywhere, so no recipient gets a second line."""
    assert wording.when_in(event(), "America/New_York") is None


@pytest.mark.parametrize("zone", ZONES)
def test_every_zone_reads_on_the_recipients_clock(zone: str) -> None:
    """For every zone a recipient may name, the start reads on that clock and names the zone."""
    made = wording.when_in(timed(datetime(2026, 7, 7, 10), datetime(2026, 7, 7, 12)), zone)
    if zone == "Europe/Istanbul":
        assert made is None
    else:
        assert made is not None
        assert made.endswith(f" ({zone})")


@pytest.mark.parametrize("zone", ZONES)
def test_every_zone_names_itself_on_the_page(zone: str) -> None:
    """In every zone a calendar may name, a timed event reads with that zone's name at its end."""
    made = wording.when(timed(datetime(2026, 7, 7, 10), datetime(2026, 7, 7, 12), timezone=zone))
    assert made == f"Tue 7 July 2026 10:00\u201312:00 ({zone})"


# --- the short form: mail subjects ------------------------------------------------------------


def test_a_subject_abbreviates_the_day() -> None:
    """A subject names the first day with the month abbreviated."""
    assert wording.short_day(event()) == "Tue 7 Jul 2026"


def test_a_subject_names_only_the_first_day() -> None:
    """A subject names the day an event begins, however many days it covers."""
    assert wording.short_day(event(end=date(2026, 7, 9))) == "Tue 7 Jul 2026"


def test_a_subject_gives_the_start_time_and_zone_abbreviation() -> None:
    """A timed event's subject day carries its start time and its zone's abbreviation."""
    made = wording.short_day(
        timed(datetime(2026, 7, 7, 10), datetime(2026, 7, 7, 12), timezone="Europe/Brussels")
    )
    assert made == "Tue 7 Jul 2026 10:00 CEST"


def test_a_subject_follows_the_day_with_the_place() -> None:
    """The place follows the short day after a comma."""
    made = wording.short_when_where(event(location="Ankara, Türkiye"))
    assert made == "Tue 7 Jul 2026, Ankara, Türkiye"


def test_a_subject_without_a_place_ends_with_the_day() -> None:
    """An event with no place adds nothing after the short day."""
    assert wording.short_when_where(event()) == "Tue 7 Jul 2026"


# --- the command line -------------------------------------------------------------------------


def test_a_line_marks_a_single_all_day_event() -> None:
    """An all-day event on one day reads as its ISO date, marked all day."""
    assert wording.when_numeric(event()) == "2026-07-07 (all day)"


def test_a_line_gives_both_days_of_a_multi_day_event() -> None:
    """An all-day event over several days reads from its first to its last (inclusive) day."""
    made = wording.when_numeric(event(start=date(2026, 12, 31), end=date(2027, 1, 1)))
    assert made == "2026-12-31 to 2027-01-01 (all day)"


def test_a_line_gives_a_timed_range_on_one_day() -> None:
    """A timed event on one day reads as its date, then start and end times with a hyphen."""
    made = wording.when_numeric(timed(datetime(2026, 10, 25, 10), datetime(2026, 10, 25, 11, 30)))
    assert made == "2026-10-25 10:00-11:30"


def test_a_line_dates_the_end_of_an_event_across_midnight() -> None:
    """A timed event that runs past midnight gives the end's date too."""
    made = wording.when_numeric(timed(datetime(2026, 10, 25, 22), datetime(2026, 10, 26, 1)))
    assert made == "2026-10-25 22:00-2026-10-26 01:00"


# --- place, status and description ------------------------------------------------------------


def test_a_place_follows_after_a_comma() -> None:
    """An event's place reads after a comma and a space."""
    assert wording.place_after(event(location="Ankara")) == ", Ankara"


def test_no_place_adds_nothing() -> None:
    """An event with no place adds nothing."""
    assert wording.place_after(event()) == ""


def test_a_confirmed_event_says_no_status() -> None:
    """A confirmed event's status goes without saying."""
    assert wording.status(event(status="confirmed")) == ""


@pytest.mark.parametrize("status", ["tentative", "cancelled"])
def test_a_status_other_than_confirmed_is_said(status: str) -> None:
    """A tentative or cancelled event says so, in the word of the file."""
    assert wording.status(event(status=status)) == status


def test_a_description_is_its_text_stripped() -> None:
    """An event's text reads without the blank space around it."""
    assert wording.description(event(description="\n  Agenda: talks.\n\n")) == "Agenda: talks."


def test_no_description_is_empty() -> None:
    """An event with no text, participants or sources has an empty description."""
    assert wording.description(event(description="  \n")) == ""


def test_participants_are_listed_with_their_roles() -> None:
    """Participants follow as a list, each with a role when the file gives one."""
    made = wording.description(
        event(participants=[{"name": "Mark Rutte", "role": "chair"}, {"name": "Guest"}])
    )
    assert made == "Participants:\n- Mark Rutte, chair\n- Guest"


def test_sources_are_listed_with_date_and_address() -> None:
    """Sources follow as a list: publisher, title, then the date and address when given."""
    made = wording.description(
        event(
            sources=[
                {
                    "publisher": "RksNews",
                    "title": "Ministers meet",
                    "published": date(2026, 2, 11),
                    "url": "https://example.org/a",
                },
                {"publisher": "NATO", "title": "Agenda"},
            ]
        )
    )
    assert made == (
        "Sources:\n- RksNews: Ministers meet (2026-02-11) https://example.org/a\n- NATO: Agenda"
    )


def test_text_participants_and_sources_are_paragraphs() -> None:
    """Text, participants and sources read in that order, a blank line between each."""
    made = wording.description(
        event(
            description="Agenda.",
            participants=[{"name": "A"}],
            sources=[{"publisher": "P", "title": "T"}],
        )
    )
    assert made == "Agenda.\n\nParticipants:\n- A\n\nSources:\n- P: T"


_CHARACTERS = st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"])
lines = st.text(_CHARACTERS, max_size=40)
"""One line of text as a calendar file may hold it."""
texts = st.lists(st.one_of(lines, st.sampled_from(["\n", "\t", "\n\n"])), max_size=6).map("".join)
"""Free text as a calendar file may hold it."""


@given(text=texts, names=st.lists(lines.filter(str.strip), max_size=3))
def test_any_description_keeps_its_text_and_participants(text: str, names: list[str]) -> None:
    """Whatever the text and names, the description is the stripped text, then a line a name."""
    made = wording.description(
        event(description=text, participants=[{"name": name} for name in names])
    )
    listed = "Participants:\n" + "\n".join(f"- {name}" for name in names) if names else ""
    assert made == "\n\n".join(part for part in (text.strip(), listed) if part)


@given(location=lines)
def test_any_place_reads_as_written_after_the_day(location: str) -> None:
    """Whatever the place, a subject's day is followed by it exactly, or by nothing."""
    made = wording.short_when_where(event(location=location))
    assert made == ("Tue 7 Jul 2026" + (f", {location}" if location else ""))


# --- offsets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "words"),
    [("P7D", "7 days"), ("P1D", "1 day"), ("PT2H", "2 hours"), ("P1DT12H", "1 day and 12 hours"),
     ("PT90M", "1 hour and 30 minutes"), ("PT0S", "no time")],
)  # fmt: skip
def test_offsets_in_words(offset: str, words: str) -> None:
    """Offsets read as a person says them."""
    assert wording.offset_in_words(Offset.parse(offset)) == words


def test_an_offset_of_days_hours_and_minutes_lists_all_three() -> None:
    """Three parts read with commas and a final "and"."""
    assert wording.offset_in_words(Offset.parse("P2DT1H5M")) == "2 days, 1 hour and 5 minutes"
