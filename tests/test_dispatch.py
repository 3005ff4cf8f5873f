"""Dispatch: what is due is sent once, late ones are marked or skipped, failures retried."""

from __future__ import annotations

import asyncio
import email
import email.policy
import mailbox
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from eventwatch import messages, policy
from eventwatch.delivery import DeliveryError, MaildirDelivery
from eventwatch.dispatch import Dispatcher
from eventwatch.ledger import Ledger
from eventwatch.models import Calendar, ReminderPolicy
from eventwatch.policy import Status

from .helpers import DUE, STARTS, plan

if TYPE_CHECKING:
    from email.message import EmailMessage
    from pathlib import Path


class Refusing:
    """A delivery that refuses, the given number of times, with the given reply."""

    def __init__(self, reply: str, *, permanent: bool, times: int = 1_000) -> None:
        """Refuse ``times`` times, then accept."""
        self.reply, self.permanent, self.left = reply, permanent, times
        self.accepted: list[EmailMessage] = []
        """What was accepted, parsed back from the bytes as a mail client would."""
        self.parallel = 1

    async def deliver(self, message: messages.Outgoing) -> str:
        """Refuse while refusals are left, else accept."""
        if self.left > 0:
            self.left -= 1
            raise DeliveryError(self.reply, permanent=self.permanent)
        parsed = email.message_from_bytes(message.data, policy=email.policy.default)
        self.accepted.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    """A ledger holding the plan."""
    made = Ledger.in_folder(tmp_path / "state")
    made.reconcile(policy.follow(plan()), DUE - timedelta(days=30))
    return made


def dispatcher(
    ledger: Ledger,
    delivery: object,
    catch_up: timedelta = timedelta(hours=6),
    reminders: list[policy.Reminder] | None = None,
) -> Dispatcher:
    """A dispatcher over ``ledger`` with the plan (or ``reminders``) and an empty attachment."""
    return Dispatcher(
        ledger=ledger,
        delivery=delivery,  # type: ignore[arg-type]
        sender=messages.Sender("eventwatch@example.org"),
        catch_up=catch_up,
        plan={r.key: r for r in (reminders if reminders is not None else plan())},
        attachment=lambda _event: b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
    )


def only_row(ledger: Ledger) -> object:
    """The ledger's one row."""
    (row,) = ledger.rows().values()
    return row


def test_due_reminder_is_written_once(ledger: Ledger, tmp_path: Path) -> None:
    """At its due instant the reminder lands in the Maildir, once, and is recorded as sent."""
    box = tmp_path / "outbox"
    send = dispatcher(ledger, MaildirDelivery(box))
    assert asyncio.run(send.run_due(DUE - timedelta(seconds=1))) == []
    (outcome,) = asyncio.run(send.run_due(DUE))
    assert outcome.result == "sent"
    assert asyncio.run(send.run_due(DUE + timedelta(minutes=5))) == []
    (message,) = list(mailbox.Maildir(box, create=False))
    row = only_row(ledger)
    assert row.status is Status.SENT  # type: ignore[attr-defined]
    assert row.message_id == message["Message-ID"]  # type: ignore[attr-defined]
    assert not message["Subject"].startswith("Late")


def test_transient_failure_is_retried_with_backoff(ledger: Ledger) -> None:
    """A 451 is retried after 1, then 2 minutes, and the third try delivers."""
    refusing = Refusing("451 4.3.0 try later", permanent=False, times=2)
    send = dispatcher(ledger, refusing)
    (first,) = asyncio.run(send.run_due(DUE))
    assert first.result == "retry"
    assert ledger.next_due() == DUE + timedelta(minutes=1)
    (second,) = asyncio.run(send.run_due(DUE + timedelta(minutes=1)))
    assert second.result == "retry"
    assert ledger.next_due() == DUE + timedelta(minutes=3)
    (third,) = asyncio.run(send.run_due(DUE + timedelta(minutes=3)))
    assert third.result == "sent"
    assert only_row(ledger).attempts == 3  # type: ignore[attr-defined]


def test_permanent_failure_fails_at_once(ledger: Ledger) -> None:
    """A 550 is final: the row fails with the server's reply and is not retried."""
    send = dispatcher(ledger, Refusing("550 5.1.1 no such user", permanent=True))
    (outcome,) = asyncio.run(send.run_due(DUE))
    assert outcome.result == "failed"
    row = only_row(ledger)
    assert (row.status, row.last_error) == (Status.FAILED, "550 5.1.1 no such user")  # type: ignore[attr-defined]
    assert ledger.next_due() is None


def test_retries_stop_when_the_event_begins(ledger: Ledger) -> None:
    """A reminder still failing when its event begins becomes failed."""
    send = dispatcher(ledger, Refusing("421 busy", permanent=False))
    at = DUE
    while (due := ledger.next_due()) is not None:
        at = max(at, due)
        asyncio.run(send.run_due(at))
    row = only_row(ledger)
    assert row.status is Status.FAILED  # type: ignore[attr-defined]
    assert at < STARTS


@pytest.mark.parametrize(
    ("late", "result", "marked_late"),
    [
        (timedelta(seconds=5), "sent", False),
        (timedelta(hours=1), "sent", True),
        (timedelta(hours=7), "skipped", None),
    ],
)
def test_catch_up_rule(
    ledger: Ledger,
    late: timedelta,
    result: str,
    marked_late: bool | None,  # noqa: FBT001
) -> None:
    """Missed by seconds: sent as usual; by an hour: sent marked late; by 7 hours: skipped."""
    refusing = Refusing("", permanent=False, times=0)
    (outcome,) = asyncio.run(dispatcher(ledger, refusing).run_due(DUE + late))
    assert outcome.result == result
    if marked_late is not None:
        assert refusing.accepted[0]["Subject"].startswith("Late reminder") is marked_late


def test_begun_event_is_skipped(ledger: Ledger) -> None:
    """A reminder first looked at after its event began is skipped, whatever catch_up says."""
    send = dispatcher(ledger, Refusing("", permanent=False, times=0), catch_up=timedelta(days=9))
    (outcome,) = asyncio.run(send.run_due(STARTS + timedelta(minutes=1)))
    assert (outcome.result, outcome.detail) == ("skipped", "the event had begun")


def accept() -> Refusing:
    """A delivery that accepts everything."""
    return Refusing("", permanent=False, times=0)


def test_message_built_ahead_is_sent_on_time_dated_its_due_instant(ledger: Ledger) -> None:
    """Prepared 10 minutes ahead, the reminder goes out as built: dated its due instant."""
    accepting = accept()
    send = dispatcher(ledger, accepting)
    assert asyncio.run(send.prepare_ahead(DUE - timedelta(minutes=10))) == 1
    assert list(send.prepared) == [r.key for r in plan()]
    (outcome,) = asyncio.run(send.run_due(DUE + timedelta(seconds=2)))
    assert outcome.result == "sent"
    assert send.prepared == {}
    (message,) = accepting.accepted
    assert message["Date"].datetime == DUE
    assert message["Subject"].startswith("Reminder: ")
    assert only_row(ledger).message_id == message["Message-ID"]  # type: ignore[attr-defined]


def test_message_built_ahead_but_sent_late_is_built_again(ledger: Ledger) -> None:
    """Sent 30 s after due, the prepared message is not used: the new one says it is late."""
    accepting = accept()
    send = dispatcher(ledger, accepting)
    asyncio.run(send.prepare_ahead(DUE - timedelta(minutes=10)))
    asyncio.run(send.run_due(DUE + timedelta(seconds=30)))
    (message,) = accepting.accepted
    assert message["Date"].datetime == DUE + timedelta(seconds=30)
    assert message["Subject"].startswith("Late reminder: ")


def test_only_what_falls_due_soon_is_built_ahead(ledger: Ledger) -> None:
    """An hour ahead nothing is built; what is no longer pending is dropped from the ready set."""
    send = dispatcher(ledger, accept())
    assert asyncio.run(send.prepare_ahead(DUE - timedelta(hours=1))) == 0
    assert asyncio.run(send.prepare_ahead(DUE - timedelta(minutes=1))) == 1
    ledger.reconcile(policy.follow([]), DUE - timedelta(minutes=1))  # the event is gone: cancelled
    assert asyncio.run(send.prepare_ahead(DUE - timedelta(seconds=30))) == 0
    assert send.prepared == {}


class Halting:
    """A delivery that accepts one message and halts its dispatcher while doing so."""

    def __init__(self) -> None:
        """Accept, and halt ``dispatcher`` (set before use) at the first message."""
        self.dispatcher: Dispatcher | None = None
        self.accepted: list[str] = []
        self.parallel = 1

    async def deliver(self, message: messages.Outgoing) -> str:
        """Accept, as SIGTERM arrives mid-batch."""
        assert self.dispatcher is not None
        self.dispatcher.halt()
        self.accepted.append(message.recipient)
        return "250 OK"


def test_halt_starts_no_new_send(tmp_path: Path) -> None:
    """Halted mid-batch, the send in flight ends sent and the rest stay claimed for requeueing."""
    reminders = plan(recipients=3)
    ledger = Ledger.in_folder(tmp_path / "state")
    ledger.reconcile(policy.follow(reminders), DUE - timedelta(days=30))
    halting = Halting()
    send = dispatcher(ledger, halting, reminders=reminders)
    halting.dispatcher = send
    (outcome,) = asyncio.run(send.run_due(DUE))
    assert outcome.result == "sent"
    assert halting.accepted == [outcome.row.recipient]
    assert asyncio.run(send.run_due(DUE)) == []  # halted: nothing more is claimed
    statuses = sorted(row.status.value for row in ledger.rows().values())
    assert statuses == ["sending", "sending", "sent"]
    assert ledger.requeue_in_flight() == 2


def test_one_message_that_cannot_be_made_fails_alone(tmp_path: Path) -> None:
    """A reminder whose message cannot be made fails with its reason; the rest go out."""
    reminders = plan(recipients=3)
    made = Ledger.in_folder(tmp_path / "state")
    made.reconcile(policy.follow(reminders), DUE - timedelta(days=30))
    send = dispatcher(made, MaildirDelivery(tmp_path / "outbox"), reminders=reminders)
    real = send.attachment
    calls = iter(range(3))

    def attachment(event: object) -> bytes:
        if next(calls) == 1:  # the second message made: a fault nobody foresaw
            raise KeyError(event)
        return real(event)  # type: ignore[arg-type]

    send.attachment = attachment
    outcomes = asyncio.run(send.run_due(DUE))
    assert sorted(o.result for o in outcomes) == ["failed", "sent", "sent"]
    statuses = sorted(str(row.status) for row in made.rows().values())
    assert statuses == ["failed", "sent", "sent"]
    (failed,) = [row for row in made.rows().values() if row.status is Status.FAILED]
    assert failed.last_error.startswith("the message cannot be made: KeyError")  # type: ignore[union-attr]
    assert len(list(mailbox.Maildir(tmp_path / "outbox", create=False))) == 2
    made.close()


@pytest.mark.parametrize(
    ("start", "night"),
    [
        (datetime(2026, 3, 30, 2, 30), datetime(2026, 3, 28, 22, 0, tzinfo=UTC)),
        (datetime(2026, 10, 26, 2, 30), datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
    ],
)
def test_a_reminder_due_in_a_change_night_is_sent_once(
    tmp_path: Path, start: datetime, night: datetime
) -> None:
    """Passes every five minutes through a night the clocks change send its reminder once."""
    cal = Calendar.model_validate(
        {
            "id": "nato-2026",
            "name": "NATO",
            "timezone": "Europe/Brussels",
            "reminders": {"offsets": ["P1D"], "recipients": [{"address": "duty@example.org"}]},
            "events": [
                {"id": "e", "title": "E", "start": start, "end": start + timedelta(hours=1)}
            ],
        },
    )
    reminders = policy.reminders((cal,), ReminderPolicy())
    made = Ledger.in_folder(tmp_path / "state")
    made.reconcile(policy.follow(reminders), night - timedelta(days=1))
    send = dispatcher(made, MaildirDelivery(tmp_path / "outbox"), reminders=reminders)
    passes = [night + timedelta(minutes=5 * n) for n in range(12 * 7)]  # 22:00 to 05:00 UTC
    outcomes = [o for at in passes for o in asyncio.run(send.run_due(at))]
    made.close()
    assert [o.result for o in outcomes] == ["sent"]
    assert len(list(mailbox.Maildir(tmp_path / "outbox", create=False))) == 1
