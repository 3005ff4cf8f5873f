"""The naive path: icalendar's object model used directly, the way most code writes feeds."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import icalendar

if TYPE_CHECKING:
    from eventwatch.models import Event


def render(events: list[Event], stamp: datetime) -> bytes:
    """``Calendar()``, ``Event()``, ``add()``, ``to_ical()``, with the zones icalendar adds."""
    calendar = icalendar.Calendar()
    calendar.add("version", "2.0")
    calendar.add("prodid", "-//bench//naive//EN")
    for e in events:
        component = icalendar.Event()
        component.add("uid", e.uid)
        component.add("dtstamp", stamp)
        component.add("dtstart", e.start)
        end = e.end if isinstance(e.end, datetime) else e.end + timedelta(days=1)
        component.add("dtend", end)
        component.add("summary", e.title)
        component.add("description", e.description)
        component.add("location", e.location)
        component.add("categories", list(e.categories))
        component.add("status", "CONFIRMED")
        component.add("sequence", 0)
        calendar.add_component(component)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())
