"""Pure: how an event's date, time, place and description read, for page, mail and command line.

Each form a reader sees has one function here, and every writer (the index page, the mails,
``list`` and ``plan``) takes its words from this module. The forms differ on purpose: the page
and the mail body spell the month out, a mail subject abbreviates it, the command line writes
ISO dates that line up in a column. Times are on the event's own clock unless a function takes
another zone.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from eventwatch.models import Status

if TYPE_CHECKING:
    from eventwatch.models import Event, Offset

DASH = "\u2013"
"""An en dash, as ranges of dates and times are printed on the page and in the mail."""


def day(value: date) -> str:
    """A day spelt out: ``Tue 7 July 2026``."""
    return f"{value:%a} {value.day} {value:%B %Y}"


def when(event: Event) -> str:
    """The event's dates (and times) as a person reads them, on the event's own clock.

    ``Tue 7 July 2026``, ``7-8 July 2026``, ``Tue 7 July 2026 10:00-12:00 (Europe/Istanbul)``,
    each range with an en dash (``DASH``): the form of the index page and the mail body.
    """
    if event.all_day:
        first, last = event.first_day, event.last_day
        if first == last:
            return day(first)
        if (first.year, first.month) == (last.year, last.month):
            return f"{first.day}{DASH}{last.day} {last:%B %Y}"
        return f"{day(first)} {DASH} {day(last)}"
    assert isinstance(event.start, datetime)  # noqa: S101 - not all-day means date-times
    assert isinstance(event.end, datetime)  # noqa: S101
    span = f"{event.start:%H:%M}{DASH}{event.end:%H:%M}"
    if event.first_day != event.last_day:
        span = f"{event.start:%H:%M} {DASH} {day(event.end)} {event.end:%H:%M}"
    return f"{day(event.start)} {span} ({event.timezone})"


def when_in(event: Event, zone: str | None) -> str | None:
    """The event's start on the clock of ``zone``, for a recipient there.

    ``Tue 7 July 2026 03:00 EDT (America/New_York)``; None when there is nothing to add: no
    zone, the event's own zone, or an all-day event (whose dates are the same everywhere).
    """
    if zone is None or event.all_day or zone == event.timezone:
        return None
    assert isinstance(event.start, datetime)  # noqa: S101 - not all-day means a date-time
    start = event.start.astimezone(ZoneInfo(zone))
    return f"{start:%a} {start.day} {start:%B %Y %H:%M %Z} ({zone})"


def short_day(event: Event) -> str:
    """The day the event begins, abbreviated, with its start time if it has one.

    ``Tue 7 Jul 2026`` or ``Tue 7 Jul 2026 10:00 CEST``: the form of a mail subject.
    """
    first = event.first_day
    text = f"{first:%a} {first.day} {first:%b %Y}"
    if isinstance(event.start, datetime):
        text += f" {event.start:%H:%M %Z}"
    return text


def short_when_where(event: Event) -> str:
    """``Tue 7 Jul 2026, Ankara, Türkiye``: the short day and the place, as a subject ends."""
    return f"{short_day(event)}{place_after(event)}"


def when_numeric(event: Event) -> str:
    """The event's dates and times in ISO digits, on the event's own clock.

    ``2026-07-07 (all day)``, ``2026-07-07 to 2026-07-08 (all day)``,
    ``2026-10-25 10:00-11:30``, ``2026-10-25 22:00-2026-10-26 01:00``: the command line's form.
    """
    if event.all_day:
        if event.first_day == event.last_day:
            return f"{event.first_day} (all day)"
        return f"{event.first_day} to {event.last_day} (all day)"
    assert isinstance(event.start, datetime)  # noqa: S101 - not all-day means a date-time
    assert isinstance(event.end, datetime)  # noqa: S101
    end = (
        event.end.strftime("%H:%M")
        if event.first_day == event.last_day
        else event.end.strftime("%Y-%m-%d %H:%M")
    )
    return f"{event.start:%Y-%m-%d %H:%M}-{end}"


def place_after(event: Event) -> str:
    """``, Ankara, Türkiye`` to follow a title or a day; empty when the event has no place."""
    return f", {event.location}" if event.location else ""


def status(event: Event) -> str:
    """The event's status when it is worth saying (``tentative``, ``cancelled``); else empty."""
    return "" if event.status is Status.CONFIRMED else event.status.value


def description(event: Event) -> str:
    """The event's text, then its participants and sources, as plain text.

    The feeds' DESCRIPTION and the mail body both say this.
    """
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


def offset_in_words(offset: Offset | None) -> str:
    """How long before: ``7 days``, ``2 hours``, ``1 day and 12 hours``; a notice's, ``no time``."""
    if offset is None:
        return "no time"
    hours, rest = divmod(offset.seconds, 3600)
    minutes = rest // 60
    parts = [
        f"{n} {unit}{'s' * (n != 1)}"
        for n, unit in ((offset.days, "day"), (hours, "hour"), (minutes, "minute"))
        if n
    ]
    if not parts:
        return "no time"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
