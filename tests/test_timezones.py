"""Compact VTIMEZONEs: few observances, and the right offset at every instant of the span."""

from __future__ import annotations

import io
import zoneinfo
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import dateutil.tz
import pytest
import vobject

from eventwatch import feeds, revisions, timezones
from eventwatch.models import Calendar

# Zones with regular DST in both hemispheres, none, abolished DST, and rule changes.
ZONES = [
    ("Europe/Brussels", 2026, 2026),
    ("America/New_York", 2005, 2009),  # the US rules changed in 2007
    ("Australia/Sydney", 2025, 2027),
    ("Europe/Istanbul", 2015, 2017),  # summer time became permanent in September 2016
    ("America/Sao_Paulo", 2017, 2020),  # DST abolished in 2019
    ("Asia/Kolkata", 2026, 2026),
    ("Europe/Moscow", 2010, 2015),
]


def _vtimezone_feed(zone: str, first: int, last: int) -> str:
    """A feed with one event in ``zone`` spanning ``first`` to ``last``."""
    cal = Calendar.model_validate(
        {
            "id": "z",
            "name": "Z",
            "timezone": zone,
            "events": [
                {
                    "id": "e",
                    "title": "E",
                    "start": datetime(first, 1, 2, 12),
                    "end": datetime(last, 12, 30, 12),
                },
            ],
        },
    )
    event = cal.events[0]
    entry = feeds.Entry(event, revisions.revise(event, None, datetime(2026, 1, 1, tzinfo=UTC)))
    header = feeds.Header("Z", "", timedelta(hours=1))
    return feeds.Renderer().render(header, [entry]).body.decode()


def _instants(first: int, last: int) -> list[datetime]:
    """Every sixth hour of the span, in UTC."""
    start = datetime(first, 1, 1, tzinfo=UTC)
    end = datetime(last + 1, 1, 1, tzinfo=UTC)
    steps = int((end - start) / timedelta(hours=6))
    return [start + timedelta(hours=6 * n) for n in range(steps)]


@pytest.mark.parametrize(("zone", "first", "last"), ZONES)
def test_dateutil_agrees_with_zoneinfo(zone: str, first: int, last: int) -> None:
    """dateutil's VTIMEZONE reader, using our definition alone, gives zoneinfo's offsets.

    (Home Assistant's ical cannot be the judge here: it refuses RFC 5545's own example
    VTIMEZONE, whose rules end with a UTC UNTIL, and uses zoneinfo for IANA names anyway.)
    """
    theirs = dateutil.tz.tzical(io.StringIO(_vtimezone_feed(zone, first, last))).get(zone)
    ours = ZoneInfo(zone)
    for instant in _instants(first, last):
        assert instant.astimezone(theirs).utcoffset() == instant.astimezone(ours).utcoffset(), (
            zone,
            instant,
        )


@pytest.mark.parametrize(("zone", "first", "last"), ZONES)
def test_vobject_agrees_with_zoneinfo(zone: str, first: int, last: int) -> None:
    """vobject builds its own tzinfo from our VTIMEZONE, and it agrees too."""
    parsed = vobject.readOne(_vtimezone_feed(zone, first, last))
    theirs = parsed.vtimezone.gettzinfo()
    ours = ZoneInfo(zone)
    for instant in _instants(first, last):
        assert instant.astimezone(theirs).utcoffset() == instant.astimezone(ours).utcoffset(), (
            zone,
            instant,
        )


def test_regular_dst_is_two_yearly_rules() -> None:
    """Brussels is one DAYLIGHT and one STANDARD rule, as Outlook wants, not a list of dates."""
    found = timezones.observances("Europe/Brussels", 2026, 2030)
    assert [(o.daylight, o.bymonth, o.byday, o.until) for o in found] == [
        (True, 3, "-1SU", None),
        (False, 10, "-1SU", None),
    ]
    assert found[0].start == datetime(2025, 3, 30, 2, 0)  # on the clock before the change


def test_rule_change_ends_the_old_rule() -> None:
    """New York's rules before 2007 end with UNTIL; the new ones recur on."""
    found = timezones.observances("America/New_York", 2005, 2009)
    rules = [(o.daylight, o.bymonth, o.byday, o.until is None) for o in found]
    assert rules == [
        (True, 4, "1SU", False),
        (False, 10, "-1SU", False),
        (True, 3, "2SU", True),
        (False, 11, "1SU", True),
    ]


def test_zone_without_transitions_is_one_observance() -> None:
    """Istanbul has kept +03 since 2016: one STANDARD observance."""
    (only,) = timezones.observances("Europe/Istanbul", 2026, 2026)
    assert (only.daylight, only.offset_from, only.offset_to, only.byday) == (
        False,
        timedelta(hours=3),
        timedelta(hours=3),
        None,
    )


def test_every_tzid_has_its_vtimezone_and_no_other() -> None:
    """A feed declares exactly the zones its timed events use."""
    text = _vtimezone_feed("America/New_York", 2026, 2026)
    assert text.count("BEGIN:VTIMEZONE") == 1
    assert "TZID:America/New_York" in text
    assert "Europe/" not in text


def test_utc_names_are_the_zones_that_are_utc() -> None:
    """The names written as UTC are the zones with no offset or summer time, named UTC or GMT."""
    probes = [
        datetime(y, m, 2, tzinfo=UTC) for y in (2, 1000, 1900, 1970, 2026, 9998) for m in (1, 7)
    ]

    def is_utc(name: str) -> bool:
        zone = ZoneInfo(name)
        seen = {(p.astimezone(zone).utcoffset(), p.astimezone(zone).tzname()) for p in probes}
        return seen <= {(timedelta(0), "UTC"), (timedelta(0), "GMT")}

    # localtime is this machine's zone, whatever that is, rather than a name in the tz database.
    names = (zoneinfo.available_timezones() | {"UTC"}) - {"localtime"}
    assert {name for name in names if is_utc(name)} == timezones.UTC_NAMES
