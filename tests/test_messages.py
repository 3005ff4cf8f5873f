"""Reminder messages: headers, parts, attachment, and what no calendar text can do to them."""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import re
from datetime import date, datetime

import ical.calendar_stream
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from eventwatch import messages, policy
from eventwatch.errors import MessageError

from .helpers import SENDER, SENT, ics_of, reminder


def build(r: policy.Reminder, *, late: bool = False) -> email.message.EmailMessage:
    """The message, parsed back from its bytes as a mail client would."""
    made = messages.build(r, SENDER, sent_at=SENT, ics=ics_of(r), late=late)
    return email.message_from_bytes(bytes(made), policy=email.policy.default)  # type: ignore[return-value]


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


# --- header injection, as a class of input ----------------------------------------------------

HEADERS = {
    "from", "to", "subject", "date", "message-id", "auto-submitted", "mime-version",
    "content-type",
}  # fmt: skip
"""Every header a reminder carries, and no other."""

ENCODED_BREAKS = [
    "=?UTF-8?Q?=0A?=", "=?utf-8?q?=0D=0A?=", "=?UTF-8?B?Cg==?=", "=?UTF-8?B?DQo=?=",
    "=?iso-8859-1?Q?=0A?=", "=?UTF-8?Q?=0D?=", "=?UTF-8?Q?=E2=80=A8?=", "=?UTF-8?Q?=00?=",
    "=?us-ascii?Q?=0A=0A?=", "=?UTF-8?Q?=0A?==?UTF-8?Q?=0A?=",
]  # fmt: skip
"""RFC 2047 encoded words that decode to a line break, a NUL or a line separator."""

PRINTABLE = st.text(st.characters(blacklist_categories=("Cc", "Zl", "Zp", "Cs")), max_size=12)
"""Any text the records take on one line: every character but controls and line separators."""

HOSTILE = st.lists(
    st.one_of(
        st.sampled_from(ENCODED_BREAKS),
        st.sampled_from(["Bcc: x@evil.example", "Reply-To: y@evil.example", " ", "  ", ":"]),
        st.sampled_from(['"', "\\", ",", ";", "@", "=?", "?=", "Ü", "😀", "<", ">", "Bcc:"]),
        st.text("ab", min_size=55, max_size=400),  # runs too long to fold at a space
        PRINTABLE,
    ),
    max_size=12,
).map(lambda parts: "".join(parts)[:1000])
"""One line built of the pieces an attacker would use, and of anything else."""

BREAKS = st.sampled_from(["\r", "\n", "\r\n", "\x00", "\u2028", "\u2029", "\x85", "\x1b"])


def _header_lines(data: bytes) -> list[str]:
    """The header block's lines as a receiving server splits them (a bare CR or LF too)."""
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    return re.split(r"\r\n|\r|\n", head)


def _display_name(data: bytes) -> str:
    """The display name in the To header of ``data``, decoded by RFC 2047's rules.

    The standard library's address parser puts a space between adjacent encoded words, which
    RFC 2047 (section 6.2) says to drop; ``decode_header`` drops it.
    """
    raw = email.message_from_bytes(data, policy=email.policy.compat32)["To"]
    name, _ = email.utils.parseaddr(raw)
    return str(email.header.make_header(email.header.decode_header(name)))


@settings(max_examples=300)
@given(
    title=HOSTILE,
    location=HOSTILE,
    description=st.lists(st.one_of(HOSTILE, st.sampled_from(["\n", "\t", "\r\n"]))).map("".join),
    name=HOSTILE,
)
@example(
    title="Delta =?UTF-8?Q?=0A?=Bcc: x@evil.example check", location="", description="", name=""
)
@example(title="x =?UTF-8?Q?=0A=0A?=Reply-To: y@evil.example", location="", description="", name="")
@example(title="Summit", location="", description="", name="Bad =?UTF-8?Q?=0A?=Bcc: x@e.example")
@example(title="t" * 1000, location="p" * 1000, description="", name="n" * 1000)
def test_no_text_adds_a_header_or_a_recipient(
    title: str, location: str, description: str, name: str
) -> None:
    """Whatever the text, a message has exactly its own headers and its one recipient."""
    title = title if title.strip() else "Summit"
    r = reminder(title=title, location=location, description=description, name=name or None)
    made = messages.outgoing(messages.build(r, SENDER, sent_at=SENT, ics=b""))
    assert made.recipient == "duty@example.org"
    lines = _header_lines(made.data)
    assert max(len(line.encode()) for line in lines) <= 78
    names = [line.partition(":")[0].lower() for line in lines if line[:1] not in {" ", "\t"}]
    assert sorted(names) == sorted(HEADERS)
    parsed = email.message_from_bytes(made.data, policy=email.policy.default)
    assert {k.lower() for k in parsed} == HEADERS
    assert [a.addr_spec for a in parsed["To"].addresses] == ["duty@example.org"]
    assert _display_name(made.data) == (name or "")
    assert parsed["Subject"] == messages.subject(r, late=False)


@given(before=HOSTILE, brk=BREAKS, after=HOSTILE, field=st.sampled_from(["title", "location"]))
def test_a_line_break_in_one_line_text_is_refused_on_entry(
    before: str, brk: str, after: str, field: str
) -> None:
    """A control character or line separator in a title or place never reaches a message."""
    with pytest.raises(ValidationError, match="control character"):
        reminder(**{field: f"x{before}{brk}{after}"})


@given(before=HOSTILE, brk=BREAKS, after=HOSTILE)
def test_a_line_break_in_a_recipient_name_is_refused_on_entry(
    before: str, brk: str, after: str
) -> None:
    """A recipient's display name holds no control character or line separator."""
    with pytest.raises(ValidationError, match="control character"):
        reminder(name=f"x{before}{brk}{after}")


def test_a_message_that_would_gain_a_header_is_refused() -> None:
    """The last check refuses bytes with a header the message has not got."""
    message = messages.build(reminder(), SENDER, sent_at=SENT, ics=b"")
    del message["Subject"]
    message.set_raw("Subject", "Hello\nBcc: x@evil.example")
    with pytest.raises(MessageError, match="headers"):
        messages.outgoing(message)


def test_a_message_to_someone_else_is_refused() -> None:
    """The last check refuses a To header that names another recipient than the envelope."""
    message = messages.build(reminder(), SENDER, sent_at=SENT, ics=b"")
    del message["To"]
    message.set_raw("To", "duty@example.org, x@evil.example")
    with pytest.raises(MessageError, match="would go to"):
        messages.outgoing(message)


@pytest.mark.parametrize(
    ("address", "name", "envelope", "utf8"),
    [
        ("bad@bücher.example", "Bad", "bad@xn--bcher-kva.example", False),
        ("user@xn--bcher-kva.example", "User", "user@xn--bcher-kva.example", False),
        ("bädi@example.org", "Bädi", "bädi@example.org", True),
    ],
)
def test_internationalised_addresses_with_names(
    address: str,
    name: str,
    envelope: str,
    utf8: bool,  # noqa: FBT001
) -> None:
    """An IDN domain travels in its ASCII form; only a non-ASCII local part needs SMTPUTF8."""
    made = messages.outgoing(
        messages.build(reminder(address=address, name=name), SENDER, sent_at=SENT, ics=b"")
    )
    assert (made.recipient, made.utf8) == (envelope, utf8)
    parsed = email.message_from_bytes(made.data, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == name
