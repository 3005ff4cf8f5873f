"""Reminder messages: headers, parts, attachment, and what no calendar text can do to them."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import ical.calendar_stream
import pytest

from eventwatch import feeds, messages, planner, revisions
from eventwatch.models import Calendar, Offset, ReminderPolicy

SENDER = messages.Sender("eventwatch <eventwatch@example.org>")
SENT = datetime(2026, 6, 30, 6, 0, tzinfo=UTC)


def reminder(offset: str = "P7D", **event: Any) -> planner.Reminder:  # noqa: ANN401
    """The ``offset`` reminder of one event (the summit unless told otherwise)."""
    table = {
        "id": "summit-2026-07",
        "title": "NATO Summit 2026",
        "start": date(2026, 7, 7),
        "end": date(2026, 7, 8),
        "location": "Ankara, Türkiye",
        "timezone": "Europe/Istanbul",
    } | event
    cal = Calendar.model_validate(
        {
            "id": "nato-2026",
            "name": "NATO",
            "timezone": "Europe/Brussels",
            "reminders": {
                "offsets": [offset],
                "recipients": [
                    {
                        "address": "duty@example.org",
                        "name": "Duty officer",
                        "timezone": "America/New_York",
                    },
                ],
            },
            "events": [table],
        },
    )
    (found,) = planner.reminders((cal,), ReminderPolicy())
    return found


def ics_of(r: planner.Reminder) -> bytes:
    """The one-event calendar attached to ``r``'s message."""
    entry = feeds.Entry(r.event, revisions.revise(r.event, None, SENT))
    return (
        feeds.Renderer().render(feeds.Header(r.event.title, "", timedelta(hours=1)), [entry]).body
    )


def build(r: planner.Reminder, *, late: bool = False) -> email.message.EmailMessage:
    """The message, parsed back from its bytes as a mail client would."""
    made = messages.build(r, SENDER, sent_at=SENT, ics=ics_of(r), late=late)
    return email.message_from_bytes(bytes(made), policy=email.policy.default)  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("offset", "words"),
    [("P7D", "7 days"), ("P1D", "1 day"), ("PT2H", "2 hours"), ("P1DT12H", "1 day and 12 hours"),
     ("PT90M", "1 hour and 30 minutes"), ("PT0S", "no time")],
)  # fmt: skip
def test_offsets_in_words(offset: str, words: str) -> None:
    """Offsets read as a person says them."""
    assert messages.in_words(Offset.parse(offset)) == words


def test_headers() -> None:
    """From, To with name, subject with day and place, Date, stable Message-ID, auto-generated."""
    r = reminder()
    parsed = build(r)
    assert parsed["From"] == "eventwatch <eventwatch@example.org>"
    assert parsed["To"] == "Duty officer <duty@example.org>"
    assert (
        parsed["Subject"]
        == "Reminder: NATO Summit 2026 in 7 days (Tue 7 Jul 2026, Ankara, Türkiye)"
    )
    assert parsed["Date"].datetime == SENT
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Message-ID"] == messages.message_id(r.key, SENDER.address)
    assert parsed["Message-ID"] == build(reminder())["Message-ID"]  # the same reminder, the same id
    assert parsed["Message-ID"].endswith("@example.org>")


def test_late_reminder_says_so() -> None:
    """A late reminder is marked in the subject and the body."""
    parsed = build(reminder(), late=True)
    assert parsed["Subject"].startswith("Late reminder: ")
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    assert text.startswith("This reminder is late: it was due 2026-06-30 06:00 UTC.")


def test_bodies_in_both_forms_with_html_escaped() -> None:
    """Plain text and HTML alternatives; calendar text is escaped in the HTML only."""
    parsed = build(reminder(title="Talks <b>& more</b>", description="Agenda: a < b"))
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    html = parsed.get_body(preferencelist=("html",)).get_content()
    assert "Talks <b>& more</b>" in text
    assert "Agenda: a < b" in text
    assert "Talks &lt;b&gt;&amp; more&lt;/b&gt;" in html
    assert "<b>&" not in html


def test_recipient_zone_is_shown_for_timed_events() -> None:
    """A recipient with a zone sees the time on their clock too."""
    parsed = build(reminder(start=datetime(2026, 7, 7, 10), end=datetime(2026, 7, 7, 12)))
    text = parsed.get_body(preferencelist=("plain",)).get_content()
    assert "Tue 7 July 2026 10:00–12:00 (Europe/Istanbul)" in text
    assert "Tue 7 July 2026 03:00 EDT (America/New_York) (your time)" in text


def test_attachment_adds_the_event() -> None:
    """The event is attached as text/calendar; method=PUBLISH, and a strict parser reads it."""
    parsed = build(reminder())
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_param("method") == "PUBLISH"
    assert attachment.get_filename() == "summit-2026-07.ics"
    calendar = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(
        attachment.get_content().decode()
        if isinstance(attachment.get_content(), bytes)
        else attachment.get_content(),
    )
    (event,) = calendar.events
    assert (event.uid, event.dtstart, event.dtend) == (
        "nato-2026/summit-2026-07@eventwatch",
        date(2026, 7, 7),
        date(2026, 7, 9),
    )


def test_non_ascii_subject_is_encoded() -> None:
    """Non-ASCII text travels as encoded words and comes back intact."""
    made = messages.build(reminder(title="Саміт НАТО 😀"), SENDER, sent_at=SENT, ics=b"")
    raw = bytes(made)
    assert all(byte < 128 for byte in raw.split(b"\n\n", 1)[0])
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"].startswith("Reminder: Саміт НАТО 😀 in 7 days")


def test_headers_cannot_be_injected() -> None:
    """A line break cannot reach a header: the records refuse it before any message is made."""
    with pytest.raises(ValueError, match="U\\+000A"):
        reminder(title="Summit\nBcc: everyone@example.org")
