"""The daemon's reminder side: reminders sent when due, notices when a reminded event changes."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import mailbox
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import icalendar

from eventwatch import dispatch, feeds, inputs, publication
from eventwatch.ledger import Ledger
from eventwatch.policy import Status
from eventwatch.reminders import Reminders

from .helpers import HOSTILE_CALENDAR, Recorder, Server

if TYPE_CHECKING:
    from collections.abc import Collection

    import pytest

    from .conftest import Site

SUMMIT = """\
name = "NATO"
timezone = "Europe/Istanbul"

[reminders]
offsets = ["P1D"]
recipients = [{{ address = "duty@example.org", name = "Duty officer" }}]

[[events]]
id = "summit"
title = "NATO Summit 2026"
start = 2026-07-07
end = 2026-07-08
location = "{location}"
status = "{status}"
"""

DUE = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)


def _messages(site: Site) -> list[email.message.EmailMessage]:
    """What the Maildir outbox holds, oldest first."""
    box = mailbox.Maildir(site.root / "state" / "outbox", create=False)
    found = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in box]
    return sorted(found, key=lambda m: m["Date"].datetime)  # type: ignore[return-value]


class Served:
    """The site's files published as the daemon would, at ``now``, a clock the test moves."""

    def __init__(self, site: Site, now: datetime) -> None:
        """Open the site's ledger; nothing is read until called."""
        self.site, self.now = site, now
        self.ledger = Ledger.in_folder(site.root / "state")
        self.renderer = feeds.Renderer()

    def __call__(self) -> tuple[inputs.Inputs, publication.Publication]:
        """Read the files and build what the daemon would serve at ``now``."""
        loaded = inputs.load(self.site.config)
        options = publication.Options.of(loaded.settings)
        built = publication.build(loaded.calendars, options, self.ledger, self.renderer, self.now)
        return loaded, built


def test_reminded_recipient_gets_changed_then_cancelled(site: Site) -> None:
    """After the P1D reminder, moving the summit sends Changed:, cancelling it Cancelled:."""
    (site.calendars / "test.toml").unlink()
    site.write_calendar("nato", SUMMIT.format(location="Ankara, Türkiye", status="confirmed"))
    publish = Served(site, DUE)
    ledger = publish.ledger

    async def scenario() -> None:
        reminders = Reminders(ledger, lambda: publish.now)
        await reminders.start(*publish())
        publish.now = DUE + timedelta(hours=1)
        site.write_calendar("nato", SUMMIT.format(location="Istanbul, Türkiye", status="confirmed"))
        await reminders.replan(*publish())
        publish.now = DUE + timedelta(hours=2)
        site.write_calendar("nato", SUMMIT.format(location="Istanbul, Türkiye", status="cancelled"))
        await reminders.replan(*publish())
        publish.now = DUE + timedelta(hours=3)
        await reminders.replan(*publish())  # nothing changed: no further notice
        await reminders.stop()

    asyncio.run(scenario())
    statuses = sorted((row.label, row.status) for row in ledger.rows().values())
    ledger.close()
    sent = _messages(site)
    assert [m["Subject"] for m in sent] == [
        "Reminder: NATO Summit 2026 in 1 day (Tue 7 Jul 2026, Ankara, Türkiye)",
        "Changed: NATO Summit 2026 (Tue 7 Jul 2026, Istanbul, Türkiye)",
        "Cancelled: NATO Summit 2026 (Tue 7 Jul 2026, Istanbul, Türkiye)",
    ]
    assert len({m["Message-ID"] for m in sent}) == 3
    changed, cancelled = sent[1], sent[2]
    assert (
        changed.get_body(preferencelist=("plain",))
        .get_content()
        .startswith(
            "This event has changed since you were reminded of it",
        )
    )
    for message, sequence, status in ((changed, 1, "CONFIRMED"), (cancelled, 2, "CANCELLED")):
        (attachment,) = list(message.iter_attachments())
        event = icalendar.Calendar.from_ical(attachment.get_content()).walk("VEVENT")[0]
        assert (int(event["SEQUENCE"]), str(event["STATUS"])) == (sequence, status)
    assert statuses == [("P1D", Status.SENT), ("cancelled", Status.SENT), ("changed", Status.SENT)]


MEETING = """\
name = "Test"
timezone = "UTC"

[reminders]
offsets = {offsets}
recipients = [{recipients}]

[[events]]
id = "meeting"
title = "Meeting"
start = {start}
end = {end}
status = "{status}"
"""

MEETING_AT = datetime(2026, 7, 7, 10, 0, tzinfo=UTC)


def _meeting(
    site: Site,
    starts: datetime,
    status: str = "confirmed",
    offsets: tuple[str, ...] = ("P1D", "PT1H"),
    recipients: tuple[str, ...] = ("duty@example.org",),
) -> None:
    """The test calendar with its one meeting at ``starts``, an hour long."""
    site.write_calendar(
        "test",
        MEETING.format(
            start=starts.replace(tzinfo=None).isoformat(),
            end=(starts + timedelta(hours=1)).replace(tzinfo=None).isoformat(),
            status=status,
            offsets=json.dumps(list(offsets)),
            recipients=", ".join(f'{{ address = "{a}" }}' for a in recipients),
        ),
    )


def test_moved_then_cancelled_over_smtp(site: Site) -> None:
    """Moved after its reminder, then cancelled, a meeting sends Changed: and Cancelled: by SMTP.

    The old pending PT1H reminder is cancelled by the move, the new ones by the cancellation.
    """
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    site.write_config(
        f"""
        [mail]
        delivery = "smtp"
        from = "eventwatch@example.org"
        [smtp]
        host = "127.0.0.1"
        port = {server.port}
        security = "none"
        """,
    )
    _meeting(site, MEETING_AT)
    moved = MEETING_AT + timedelta(days=2)
    publish = Served(site, MEETING_AT - timedelta(days=1))
    ledger = publish.ledger

    def by_offset() -> dict[tuple[str, datetime], Status]:
        return {(r.offset, r.due): r.status for r in ledger.rows().values()}

    async def scenario() -> list[dict[tuple[str, datetime], Status]]:
        reminders = Reminders(ledger, lambda: publish.now)
        await reminders.start(*publish())  # the P1D reminder is due now
        seen = [by_offset()]
        publish.now += timedelta(hours=1)
        _meeting(site, moved)
        await reminders.replan(*publish())
        seen.append(by_offset())
        publish.now += timedelta(hours=1)
        _meeting(site, moved, status="cancelled")
        await reminders.replan(*publish())
        seen.append(by_offset())
        await reminders.stop()
        return seen

    try:
        first, after_move, after_cancel = asyncio.run(scenario())
    finally:
        ledger.close()
        server.stop()
    old_p1d, old_pt1h = (
        ("P1D", MEETING_AT - timedelta(days=1)),
        ("PT1H", MEETING_AT - timedelta(hours=1)),
    )
    new_p1d, new_pt1h = ("P1D", moved - timedelta(days=1)), ("PT1H", moved - timedelta(hours=1))
    assert first == {old_p1d: Status.SENT, old_pt1h: Status.PENDING}
    assert after_move[old_p1d] is Status.SENT
    assert after_move[old_pt1h] is Status.CANCELLED
    assert (after_move[new_p1d], after_move[new_pt1h]) == (Status.PENDING, Status.PENDING)
    assert (after_cancel[new_p1d], after_cancel[new_pt1h]) == (Status.CANCELLED, Status.CANCELLED)
    received = [
        email.message_from_bytes(e.content, policy=email.policy.default) for e in recorder.received
    ]
    assert [m["Subject"] for m in received] == [
        "Reminder: Meeting in 1 day (Tue 7 Jul 2026 10:00 UTC)",
        "Changed: Meeting (Thu 9 Jul 2026 10:00 UTC)",
        "Cancelled: Meeting (Thu 9 Jul 2026 10:00 UTC)",
    ]
    assert [e.rcpt_tos for e in recorder.received] == [["duty@example.org"]] * 3


def test_a_batch_beyond_one_claim_is_sent_in_one_wake(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five reminders due at once, claimed two at a time, all go out without the sweep."""
    monkeypatch.setattr(dispatch, "CLAIM_AT_MOST", 2)
    _meeting(
        site, MEETING_AT, offsets=("P1D",), recipients=tuple(f"r{n}@example.org" for n in range(5))
    )
    due = MEETING_AT - timedelta(days=1)
    publish = Served(site, due)
    ledger = publish.ledger

    async def scenario() -> None:
        reminders = Reminders(ledger, lambda: due)
        await reminders.start(*publish())
        await reminders.stop()

    try:
        asyncio.run(scenario())
        statuses = [row.status for row in ledger.rows().values()]
    finally:
        ledger.close()
    assert statuses == [Status.SENT] * 5
    assert len(_messages(site)) == 5


def test_hostile_recipients_over_smtp_each_get_one_message_with_only_its_headers(
    site: Site,
) -> None:
    """Over a real SMTP server, every recipient of the hostile calendar gets its message alone."""
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    site.write_config(
        f"""
        [mail]
        delivery = "smtp"
        from = "eventwatch@example.org"
        [smtp]
        host = "127.0.0.1"
        port = {server.port}
        security = "none"
        """,
    )
    site.write_calendar("test", HOSTILE_CALENDAR)
    due = datetime(2026, 5, 3, 8, 0, tzinfo=UTC)  # P1D before 10:00 CEST
    publish = Served(site, due)
    ledger = publish.ledger

    async def scenario() -> None:
        reminders = Reminders(ledger, lambda: due)
        await reminders.start(*publish())
        await reminders.stop()

    try:
        asyncio.run(scenario())
        statuses = sorted(str(row.status) for row in ledger.rows().values())
    finally:
        ledger.close()
        server.stop()
    assert statuses == ["sent"] * 4
    envelopes = sorted(tuple(e.rcpt_tos) for e in recorder.received)
    assert envelopes == [
        ("bad@xn--bcher-kva.example",), ("bädi@example.org",), ("ok@example.org",),
        ("user@xn--bcher-kva.example",),
    ]  # fmt: skip
    for envelope in recorder.received:
        content = envelope.original_content or envelope.content
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert sorted(k.lower() for k in message) == sorted(
            ["from", "to", "subject", "date", "message-id", "auto-submitted", "mime-version",
             "content-type"]
        )  # fmt: skip


def test_a_failing_pass_is_reported_and_the_next_one_sends(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass that fails (say, the disk) degrades health with its cause; the next pass sends."""
    _meeting(site, MEETING_AT, offsets=("P1D",))
    due = MEETING_AT - timedelta(days=1)
    publish = Served(site, due)
    ledger = publish.ledger
    real = ledger.claim_due
    failures = [OSError(28, "No space left on device")]

    def claim_due(now: datetime, limit: int, deferred: Collection[str]) -> object:
        if failures:
            raise failures.pop()
        return real(now, limit, deferred)

    monkeypatch.setattr(ledger, "claim_due", claim_due)

    async def scenario() -> tuple[str | None, str | None]:
        reminders = Reminders(ledger, lambda: due)
        await reminders.start(*publish())
        during = (await asyncio.to_thread(reminders.health)).problem
        await reminders.wake()  # what the sweep does a minute later
        after = (await asyncio.to_thread(reminders.health)).problem
        await reminders.stop()
        return during, after

    try:
        during, after = asyncio.run(scenario())
        statuses = [row.status for row in ledger.rows().values()]
    finally:
        ledger.close()
    assert during == "OSError: [Errno 28] No space left on device"
    assert after is None
    assert statuses == [Status.SENT]


def test_a_wake_during_a_replan_waits_for_the_new_plan(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep that fires while a change is being planned sends its notice, not skips it."""
    (site.calendars / "test.toml").unlink()
    site.write_calendar("nato", SUMMIT.format(location="Ankara, Türkiye", status="confirmed"))
    publish = Served(site, DUE)
    ledger = publish.ledger

    async def scenario() -> None:
        reminders = Reminders(ledger, lambda: publish.now)
        await reminders.start(*publish())
        queue = reminders._notices  # noqa: SLF001 - the seam where the replan is slowest

        def slow_notices(*args: object) -> object:
            found = queue(*args)  # type: ignore[arg-type]
            time.sleep(0.5)  # the notice row is in the ledger; the new plan not yet in use
            return found

        monkeypatch.setattr(reminders, "_notices", slow_notices)
        publish.now = DUE + timedelta(hours=1)
        site.write_calendar("nato", SUMMIT.format(location="Istanbul, Türkiye", status="confirmed"))
        replanning = asyncio.create_task(reminders.replan(*publish()))
        await asyncio.sleep(0.25)
        await reminders.wake()  # the sweep, in the middle of the replan
        await replanning
        await reminders.stop()

    try:
        asyncio.run(scenario())
        statuses = sorted((row.label, row.status) for row in ledger.rows().values())
    finally:
        ledger.close()
    assert statuses == [("P1D", Status.SENT), ("changed", Status.SENT)]
