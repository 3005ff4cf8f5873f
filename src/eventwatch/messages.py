"""Pure: a reminder in, the e-mail message that delivers it out (standard library email)."""

from __future__ import annotations

import email.header
import email.policy
import email.utils
import functools
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

from eventwatch import __version__, templating, wording
from eventwatch.errors import MessageError
from eventwatch.policy import Kind

if TYPE_CHECKING:
    from pathlib import Path

    from eventwatch.models import Event, Offset
    from eventwatch.policy import Reminder


def message_id(key: str, sender: str | None) -> str:
    """The Message-ID of reminder ``key``: the same reminder always has the same id."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    _, address = email.utils.parseaddr(sender or "")
    domain = address.rpartition("@")[2] or "eventwatch.invalid"
    return f"<{digest}.reminder@{domain}>"


def subject(reminder: Reminder, *, late: bool) -> str:
    """``Reminder: NATO Summit 2026 in 7 days (Tue 7 Jul 2026, Ankara, Türkiye)``."""
    event = reminder.event
    head = "Late reminder" if late else "Reminder"
    offset = wording.offset_in_words(reminder.offset)
    return f"{head}: {event.title} in {offset} ({wording.short_when_where(event)})"


def notice_subject(reminder: Reminder, kind: str) -> str:
    """``Changed: NATO Summit 2026 (Wed 8 Jul 2026, Ankara)``, or ``Cancelled: ...``."""
    event = reminder.event
    return f"{kind.title()}: {event.title} ({wording.short_when_where(event)})"


def _header_text(name: str, text: str) -> str:
    """``text`` as a header value that says exactly ``text`` and nothing more, folded.

    Text that could be read as an RFC 2047 encoded word (``=?UTF-8?Q?=0A?=``) or is not
    ASCII is written as encoded words of our own: the standard library would otherwise decode
    such a word while folding and write what it decodes to, a line break included, as raw
    header text (CVE-2024-6923). Folding between encoded words, as ``email.header`` does,
    also loses nothing, where the standard library's folding shows two spaces once unfolded.
    """
    if text.isascii() and "=?" not in text and _foldable(text):
        return email.header.Header(text, "us-ascii", header_name=name).encode(linesep="\n")
    return _encoded_words(name, text)


def _encoded_words(name: str, text: str) -> str:
    """``text`` as UTF-8 encoded words for header ``name``, folded between them."""
    return email.header.Header(text, "utf-8", header_name=name).encode(linesep="\n")


_WORD_AT_MOST = 60
"""The longest run without a space that plain header text may hold and still fold in time."""


def _foldable(text: str) -> bool:
    """Whether ``text`` can be folded at its spaces into lines of the usual length.

    A header line may not pass 998 octets (RFC 5322); text with a longer run than this goes
    as encoded words instead, which fold anywhere.
    """
    return all(len(word) <= _WORD_AT_MOST for word in text.split())


def _mailbox(field: str, name: str, address: str) -> str:
    """``"Name" <address>`` for header ``field``, the name quoted or encoded, never parsed."""
    if not name:
        return address
    if name.isascii() and "=?" not in name and len(name) <= _WORD_AT_MOST:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        shown = f'"{escaped}"'
    else:
        # Encoded words, never plain text: in an address header, plain words are parsed.
        shown = _encoded_words(field, name)
    last = shown.rpartition("\n")[2]
    # The address goes on a line of its own when it would make the line long.
    gap = " " if len(field) + len(last) + len(address) + 5 <= _LINE else "\n "
    return f"{shown}{gap}<{address}>"


_LINE = 78
"""The line length RFC 5322 asks headers to keep to."""

_LINE_AT_MOST = 998
"""The line length RFC 5322 allows at most; servers refuse longer ones."""

_WIRE = email.policy.SMTP.clone(refold_source="none")
"""Flattens for SMTP without refolding the header values made here (see ``_header_text``)."""


@dataclass(frozen=True, slots=True)
class Sender:
    """Who reminders come from, and the site's own templates if it has any."""

    address: str
    templates_dir: Path | None = None


@functools.lru_cache(maxsize=256)
def _body(  # noqa: PLR0913 - the cache key: everything the body depends on
    event: Event,
    *,
    offset: Offset | None,
    due: datetime,
    zone: str | None,
    late: bool,
    notice: str,
    templates_dir: Path | None,
    ics: bytes,
) -> tuple[EmailMessage, EmailMessage]:
    """The text/HTML alternative and the attachment, made once for all recipients alike.

    Only the headers differ between the recipients of one reminder (and the recipient's zone,
    which is part of the key), so the MIME parts are built and encoded once and shared: the
    parts are never changed after they are made.
    """
    values = {
        "title": event.title,
        "when": wording.when(event),
        "when_yours": wording.when_in(event, zone),
        "location": event.location,
        "status": wording.status(event),
        "description": wording.description(event),
        "offset": wording.offset_in_words(offset),
        "late": late,
        "notice": notice,
        "due": f"{due.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        "version": __version__,
    }
    alternative = EmailMessage()
    alternative.set_content(templating.render("reminder.txt.j2", templates_dir, **values))
    alternative.add_alternative(
        templating.render("reminder.html.j2", templates_dir, **values),
        subtype="html",
    )
    attachment = EmailMessage()
    attachment.set_content(
        ics,
        maintype="text",
        subtype="calendar",
        disposition="attachment",
        filename=f"{event.id}.ics",
        params={"method": "PUBLISH", "charset": "utf-8"},
    )
    # Shared parts are flattened by several threads: give them their boundary and headers now
    # so that flattening never changes them.
    alternative.set_boundary(
        "=_alternative_" + hashlib.sha256(ics + _variant(offset, due)).hexdigest()[:24]
    )
    for part in (alternative, attachment):
        del part["MIME-Version"]
    return alternative, attachment


def _variant(offset: Offset | None, due: datetime) -> bytes:
    """Bytes that tell apart the bodies of one event's reminders.

    A notice hashes as ``PT0S``, the zero offset it carried before it had a kind, so that its
    bytes stay those earlier releases sent.
    """
    return f"{'PT0S' if offset is None else offset}|{due.isoformat()}".encode()


def build(
    reminder: Reminder,
    sender: Sender,
    *,
    sent_at: datetime,
    ics: bytes,
    late: bool = False,
) -> EmailMessage:
    """The message for ``reminder``, dated ``sent_at``, with the event attached as ``ics``.

    A change notice (``reminder.kind`` is ``changed`` or ``cancelled``) says so instead.
    The standard library's email policy refuses CR or LF in a header, and every calendar
    text is refused such characters on entry, so no calendar text can add a header.
    """
    notice = None if reminder.kind is Kind.REMINDER else str(reminder.kind)
    alternative, attachment = _body(
        reminder.event,
        offset=reminder.offset,
        due=reminder.due,
        zone=reminder.recipient.timezone,
        late=late,
        notice="" if notice is None else notice,
        templates_dir=sender.templates_dir,
        ics=ics,
    )
    message = EmailMessage()
    _address_headers(message, sender.address, reminder.recipient.name, reminder.recipient.address)
    text = subject(reminder, late=late) if notice is None else notice_subject(reminder, notice)
    message.set_raw("Subject", _header_text("Subject", text))
    message["Date"] = email.utils.format_datetime(sent_at.astimezone(UTC))
    message["Message-ID"] = message_id(reminder.key, sender.address)
    message["Auto-Submitted"] = "auto-generated"
    message["MIME-Version"] = "1.0"
    message.make_mixed()
    message.attach(alternative)
    message.attach(attachment)
    return message


def _address_headers(message: EmailMessage, sender: str, name: str | None, to: str) -> None:
    """From and To, written as values of our own so that no display name is parsed."""
    sender_name, sender_address = email.utils.parseaddr(sender)
    message.set_raw("From", _mailbox("From", sender_name, sender_address))
    message.set_raw("To", _mailbox("To", name or "", to))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready for the wire: its envelope, its bytes and its Message-ID.

    Flattened once, when built, so that a message prepared ahead of its due instant costs
    nothing but the sending at that instant (and a few bytes while it waits).
    """

    sender: str
    recipient: str
    message_id: str
    data: bytes
    utf8: bool
    """Whether an address needs SMTPUTF8 (RFC 6531) to travel."""


def outgoing(message: EmailMessage) -> Outgoing:
    """``message`` flattened for SMTP (CRLF line ends), with its one sender and recipient.

    Raises ``MessageError`` if the bytes would say anything the message does not: a header
    it has not got, or another recipient.
    """
    try:
        sender = message["From"].addresses[0].addr_spec
        recipient = message["To"].addresses[0].addr_spec
        utf8 = not (sender + recipient).isascii()
        policy = _WIRE.clone(utf8=True) if utf8 else _WIRE
        data = message.as_bytes(policy=policy)
    except (
        ValueError,
        LookupError,
    ) as exc:  # UnicodeError is a ValueError, IndexError a LookupError
        msg = f"the message cannot be written: {exc}"
        raise MessageError(msg) from exc
    _check_headers(data, list(message.keys()), recipient)
    return Outgoing(sender, recipient, str(message["Message-ID"]), data, utf8)


def _check_headers(data: bytes, names: list[str], recipient: str) -> None:
    """Refuse bytes whose header block is not exactly ``names``, with ``recipient`` in To.

    The last line of defence against header injection, whatever the email package does: it
    reads the bytes as a receiving server would, a bare CR or LF ending a line too.
    """
    head = data.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    fields: dict[str, str] = {}
    for line in re.split(r"\r\n|\r|\n", head):
        if len(line.encode()) > _LINE_AT_MOST:
            msg = f"the message would carry a header line of {len(line.encode())} octets"
            raise MessageError(msg)
        if line[:1] in {" ", "\t"} and fields:
            fields[next(reversed(fields))] += line
            continue
        name, colon, value = line.partition(":")
        if not colon or name.lower() in fields:
            msg = f"the message would carry an unexpected header line {line[:60]!r}"
            raise MessageError(msg)
        fields[name.lower()] = value
    if sorted(fields) != sorted(n.lower() for n in names) or b"\r\n\r\n" not in data:
        msg = f"the message would carry the headers {sorted(fields)}, not {sorted(names)}"
        raise MessageError(msg)
    found = [address for _, address in email.utils.getaddresses([fields["to"]])]
    if found != [recipient]:
        msg = f"the message would go to {found}, not to {recipient!r}"
        raise MessageError(msg)


def test_message(sender: Sender, to: str, sent_at: datetime) -> EmailMessage:
    """A short message that proves the delivery path works."""
    message = EmailMessage()
    _address_headers(message, sender.address, None, to)
    message["Subject"] = "eventwatch test message"
    message["Date"] = email.utils.format_datetime(sent_at.astimezone(UTC))
    message["Message-ID"] = message_id(f"test|{to}|{sent_at.isoformat()}", sender.address)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"This is a test message from eventwatch {__version__}.\n"
        "If it reached you, reminders will too.\n",
    )
    return message
