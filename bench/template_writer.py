"""A plain string-template iCalendar writer: the speed limit of Python, for comparison only.

Never used by eventwatch: it escapes and folds just enough for the benchmark's events.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventwatch.models import Event


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    data = line.encode()
    if len(data) <= 75:
        return line + "\r\n"
    out, start = [], 0
    while start < len(data):
        end = min(start + (75 if start == 0 else 74), len(data))
        while end < len(data) and (data[end] & 0xC0) == 0x80:
            end -= 1
        out.append(data[start:end].decode())
        start = end
    return "\r\n ".join(out) + "\r\n"


def render(events: list[Event], stamp: datetime) -> bytes:
    """The events as one VCALENDAR."""
    parts = ["BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//template//EN\r\n"]
    dtstamp = stamp.strftime("%Y%m%dT%H%M%SZ")
    for e in events:
        if isinstance(e.start, datetime):
            start = f"DTSTART;TZID={e.timezone}:{e.start:%Y%m%dT%H%M%S}"
            end = f"DTEND;TZID={e.timezone}:{e.end:%Y%m%dT%H%M%S}"
        else:
            assert isinstance(e.end, date)
            start = f"DTSTART;VALUE=DATE:{e.start:%Y%m%d}"
            end = f"DTEND;VALUE=DATE:{e.end + timedelta(days=1):%Y%m%d}"
        parts.append(
            "BEGIN:VEVENT\r\n"
            f"UID:{e.uid}\r\nDTSTAMP:{dtstamp}\r\n{start}\r\n{end}\r\n"
            + _fold(f"SUMMARY:{_escape(e.title)}")
            + _fold(f"DESCRIPTION:{_escape(e.description)}")
            + _fold(f"LOCATION:{_escape(e.location)}")
            + _fold("CATEGORIES:" + ",".join(_escape(c) for c in e.categories))
            + "STATUS:CONFIRMED\r\nSEQUENCE:0\r\nEND:VEVENT\r\n"
        )
    parts.append("END:VCALENDAR\r\n")
    return "".join(parts).encode()
