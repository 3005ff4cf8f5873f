"""SMTP failures end to end: a real aiosmtpd server, SmtpDelivery, Dispatcher and ledger.

Each test drives the clock by passing ``now`` to ``run_due``; the server is real, on loopback,
and refuses, stalls or lacks STARTTLS as the test tells it to.
"""

# aiosmtpd calls its handler hooks by fixed names with fixed, loosely typed signatures.
# ruff: noqa: ANN401, ARG002, N802

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trustme
from aiosmtpd.smtp import MISSING

from eventwatch import messages, policy
from eventwatch.delivery import SmtpDelivery
from eventwatch.dispatch import Dispatcher, Outcome
from eventwatch.errors import OperationError
from eventwatch.ledger import Ledger
from eventwatch.policy import LATE_AFTER, Row, Status
from eventwatch.settings import SmtpSettings

from .helpers import (
    DUE,
    SECRET,
    STARTS,
    Recorder,
    Running,
    Server,
    plan,
    reminder_site,
    server_context,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

TIMEOUT = 0.5
"""The smtp ``timeout`` setting in these tests: a server holding DATA longer times out.

Half a second is still a hundred times a loopback reply, and the backoff walk waits it out
eight times.
"""

STALL = 30.0
"""How long a stalling server holds DATA: far past ``TIMEOUT``; the client's leaving ends it."""

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

CERTIFICATE_FAILURE = re.compile(r"certificate.verif|SSLCertVerification", re.IGNORECASE)
"""What a log line about a certificate that could not be verified says, in any wording."""


class Tracing(Recorder):
    """A Recorder that notes the commands it is given and can refuse or stall every time."""

    def __init__(self) -> None:
        """Accept everything, noting each MAIL, AUTH and DATA, until told otherwise."""
        super().__init__()
        self.commands: list[str] = []
        """``MAIL``, ``AUTH`` and ``DATA``, in the order the client sent them."""
        self.rcpt_always: dict[str, str] = {}
        """A reply given at RCPT, every time, by recipient address (``*`` for all)."""
        self.data_always: str | None = None
        """A reply given at DATA every time, if set."""
        self.stall_always = False
        """Whether every DATA is held ``STALL`` seconds (the message is noted first)."""

    @property
    def transactions(self) -> int:
        """How many mail transactions the client began (MAIL FROM commands)."""
        return self.commands.count("MAIL")

    async def handle_AUTH(self, server: Any, session: Any, envelope: Any, args: Any) -> Any:
        """Note the attempt; aiosmtpd then authenticates as usual."""
        self.commands.append("AUTH")
        return MISSING

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        """Note the transaction and accept the sender."""
        self.commands.append("MAIL")
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        """Refuse an address set to be refused; else as the Recorder does."""
        reply = self.rcpt_always.get(address) or self.rcpt_always.get("*")
        if reply is not None:
            return reply
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Note DATA; refuse or stall if set to, else as the Recorder does."""
        self.commands.append("DATA")
        if self.stall_always:
            self.stalls.append(STALL)
        if self.data_always is not None:
            return self.data_always
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """A certificate authority nobody trusts unless told to."""
    return trustme.CA()


@pytest.fixture
def recorder() -> Tracing:
    """A fresh handler."""
    return Tracing()


@pytest.fixture
def plain(recorder: Tracing) -> Iterator[Server]:
    """A server without TLS (so without STARTTLS), accepting AUTH in clear."""
    server = Server(recorder, auth_require_tls=False)
    yield server
    server.stop()


@dataclass
class Stack:
    """The real sending path over one event loop: ledger, SMTP delivery and dispatcher."""

    runner: asyncio.Runner
    ledger: Ledger
    delivery: SmtpDelivery
    dispatcher: Dispatcher

    def at(self, now: datetime) -> list[Outcome]:
        """One dispatch pass at ``now``."""
        return self.runner.run(self.dispatcher.run_due(now))

    def row(self, recipient: str = "duty@example.org") -> Row:
        """The ledger's row for ``recipient``."""
        (row,) = [r for r in self.ledger.rows().values() if r.recipient == recipient]
        return row


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Make a Stack sending to a loopback port with given settings; closed at the end."""
    made: list[Stack] = []
    with asyncio.Runner() as runner:

        def build(port: int, recipients: int = 1, **values: Any) -> Stack:
            reminders = plan(recipients)
            ledger = Ledger.in_folder(tmp_path / "state")
            ledger.reconcile(policy.follow(reminders), DUE - timedelta(days=30))
            settings = {"host": "127.0.0.1", "port": port, "security": "none", "timeout": TIMEOUT}
            delivery = SmtpDelivery(SmtpSettings.model_validate(settings | values))
            dispatcher = Dispatcher(
                ledger=ledger,
                delivery=delivery,
                sender=messages.Sender("eventwatch@example.org"),
                catch_up=timedelta(hours=6),
                plan={r.key: r for r in reminders},
                attachment=lambda _event: b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
            )
            made.append(Stack(runner, ledger, delivery, dispatcher))
            return made[-1]

        try:
            yield build
        finally:
            for each in made:
                runner.run(each.delivery.close())
                each.ledger.close()


# What each transient failure is set up as, and what the ledger keeps of it as the last error.
TRANSIENT = [
    pytest.param("rcpt", "421 4.3.2 service shutting down", id="421-rcpt"),
    pytest.param("data", "421 4.3.2 service shutting down", id="421-data"),
    pytest.param("rcpt", "450 4.2.1 mailbox busy, try later", id="450-rcpt"),
    pytest.param("data", "450 4.2.1 mailbox busy, try later", id="450-data"),
    pytest.param("rcpt", "451 4.3.0 local error, try later", id="451-rcpt"),
    pytest.param("data", "451 4.3.0 local error, try later", id="451-data"),
    pytest.param("rcpt", "452 4.5.3 too many recipients", id="452-rcpt"),
    pytest.param("data", "452 4.3.1 insufficient storage", id="452-data"),
    pytest.param("stall", "TimeoutError", id="timeout"),
]

PERMANENT = [
    pytest.param("rcpt", "550 5.1.1 no such user", id="550-rcpt"),
    pytest.param("data", "550 5.7.1 message refused", id="550-data"),
    pytest.param("rcpt", "554 5.7.1 relay access denied", id="554-rcpt"),
    pytest.param("data", "554 5.6.0 transaction failed", id="554-data"),
]


def fail_always(recorder: Tracing, stage: str, reply: str) -> None:
    """Make the server fail every transaction at ``stage`` (``stall``: hold DATA)."""
    if stage == "rcpt":
        recorder.rcpt_always["*"] = reply
    elif stage == "data":
        recorder.data_always = reply
    else:
        recorder.stall_always = True


@pytest.mark.parametrize(("stage", "reply"), TRANSIENT)
def test_transient_failure_is_retried_with_doubling_backoff(
    plain: Server, recorder: Tracing, stack: Callable[..., Stack], stage: str, reply: str
) -> None:
    """Each transient failure is retried after 1, 2, 4 ... 32 minutes, then every hour."""
    fail_always(recorder, stage, reply)
    sending = stack(plain.port)
    now, waits = DUE, []
    for _ in range(8):
        (outcome,) = sending.at(now)
        assert outcome.result == "retry", outcome
        row = sending.row()
        assert row.status is Status.PENDING
        assert reply in (row.last_error or ""), row  # failed as the server was told to fail
        assert row.next_attempt is not None
        waits.append(row.next_attempt - now)
        now = row.next_attempt
    assert waits == [m * MINUTE for m in (1, 2, 4, 8, 16, 32, 60, 60)]
    assert recorder.transactions == 8
    assert recorder.received == []


@pytest.mark.parametrize(("stage", "reply"), TRANSIENT)
def test_transient_failure_fails_once_the_event_begins(
    plain: Server, recorder: Tracing, stack: Callable[..., Stack], stage: str, reply: str
) -> None:
    """A reminder still failing when its event begins is failed, with the server's last error."""
    fail_always(recorder, stage, reply)
    sending = stack(plain.port)
    (first,) = sending.at(DUE)
    assert first.result == "retry"
    (last,) = sending.at(STARTS)
    assert last.result == "failed"
    row = sending.row()
    assert row.status is Status.FAILED
    assert row.last_error is not None
    assert row.last_error.startswith("the event had begun; last error: ")
    assert reply in row.last_error
    assert sending.ledger.next_due() is None
    assert recorder.transactions == 1  # nothing is sent once the event has begun


@pytest.mark.parametrize(("stage", "reply"), TRANSIENT)
def test_transient_failure_with_no_time_left_fails(
    plain: Server, recorder: Tracing, stack: Callable[..., Stack], stage: str, reply: str
) -> None:
    """A failure whose next wait would pass the event's start is failed rather than retried."""
    fail_always(recorder, stage, reply)
    sending = stack(plain.port)
    sending.at(DUE)
    (last,) = sending.at(STARTS - timedelta(seconds=30))  # the next wait is 2 minutes
    assert last.result == "failed"
    row = sending.row()
    assert row.status is Status.FAILED
    assert row.last_error is not None
    assert row.last_error.endswith("; no time left to retry")
    assert recorder.transactions == 2


@pytest.mark.parametrize(("stage", "reply"), PERMANENT)
def test_permanent_refusal_is_never_retried(
    plain: Server, recorder: Tracing, stack: Callable[..., Stack], stage: str, reply: str
) -> None:
    """A 5xx fails the reminder at once, after one attempt and one transaction, for good."""
    fail_always(recorder, stage, reply)
    sending = stack(plain.port)
    (outcome,) = sending.at(DUE)
    assert outcome.result == "failed"
    row = sending.row()
    assert (row.status, row.attempts, row.next_attempt) == (Status.FAILED, 1, None)
    assert reply in (row.last_error or "")
    assert sending.ledger.next_due() is None
    assert sending.at(DUE + 2 * HOUR) == []
    assert recorder.transactions == 1


def _message_id(content: bytes) -> bytes:
    """The Message-ID header of a raw message."""
    found = re.search(rb"^Message-ID: (.*?)\r?$", content, re.MULTILINE)
    assert found is not None
    return found.group(1)


def test_message_stored_before_a_hang_is_retried_with_its_message_id(
    plain: Server, recorder: Tracing, stack: Callable[..., Stack]
) -> None:
    """A server that stores the message and then hangs gets the retry with the same Message-ID."""
    recorder.stalls = [STALL]  # the first DATA is kept, then held past the timeout
    sending = stack(plain.port)
    (first,) = sending.at(DUE)
    assert (first.result, first.reason) == ("retry", "timeout")
    assert sending.row().next_attempt == DUE + MINUTE
    (second,) = sending.at(DUE + MINUTE)
    assert second.result == "sent"
    (stored,) = recorder.stalled
    (delivered,) = recorder.received
    assert _message_id(delivered.content) == _message_id(stored)
    assert sending.row().message_id == _message_id(stored).decode()


def test_a_refused_recipient_delays_no_other(
    plain: Server, recorder: Tracing, stack: Callable[..., Stack]
) -> None:
    """One recipient always refused with 550 leaves the other sent in the same pass, on time."""
    recorder.rcpt_always["duty@example.org"] = "550 5.1.1 no such user"
    # One connection: the refused recipient, first by key, goes first, before the other.
    sending = stack(plain.port, recipients=2, max_connections=1)
    outcomes = {o.row.recipient: o for o in sending.at(DUE)}
    assert outcomes["duty@example.org"].result == "failed"
    sent = outcomes["r1@example.org"]
    assert sent.result == "sent"
    assert sent.lateness is not None
    assert sent.lateness < LATE_AFTER.total_seconds()
    assert recorder.commands == ["MAIL", "MAIL", "DATA"]  # the refused one went first
    (envelope,) = recorder.received
    assert envelope.rcpt_tos == ["r1@example.org"]
    assert b"\r\nSubject: Reminder: " in envelope.content  # not "Late reminder"
    assert sending.row("r1@example.org").status is Status.SENT


def test_no_starttls_sends_nothing_and_is_retried(
    plain: Server, recorder: Tracing, stack: Callable[..., Stack]
) -> None:
    """With starttls required, a server without STARTTLS gets no AUTH and no mail; retried."""
    sending = stack(plain.port, security="starttls", username="eventwatch", password=SECRET)
    (outcome,) = sending.at(DUE)
    assert outcome.result == "retry"
    assert "STARTTLS" in outcome.detail
    row = sending.row()
    assert (row.status, row.next_attempt) == (Status.PENDING, DUE + MINUTE)
    assert recorder.ehlos >= 1  # the client did talk to the server
    assert recorder.commands == []  # no AUTH, no MAIL, no DATA
    assert recorder.logins == []
    assert recorder.received == []


def test_untrusted_certificate_is_one_log_line_in_the_daemon(
    tmp_path: Path, recorder: Tracing, ca: trustme.CA
) -> None:
    """The daemon logs an untrusted certificate once for the reminder, with no traceback."""
    # ca_file is not set: the system store does not know the trustme CA.
    server = Server(recorder, tls_context=server_context(ca), require_starttls=True)
    try:
        origin = datetime.now(UTC).replace(microsecond=0)
        reminder_site(tmp_path, server.port, origin + timedelta(seconds=2), origin + 30 * DAY)
        config = tmp_path / "config" / "eventwatch.toml"
        config.write_text(config.read_text().replace('security = "none"', 'security = "starttls"'))
        running = Running(tmp_path)
        try:
            wait_for(lambda: 'reason="tls"} 1.0' in _metrics(running), timeout=15)
        finally:
            code, log = running.stop()
    finally:
        server.stop()
    assert code == 0, log
    ledger = Ledger.in_folder(tmp_path / "state")
    try:
        (tried,) = [row for row in ledger.rows().values() if row.attempts]
    finally:
        ledger.close()
    assert tried.status is Status.PENDING  # a retry: the certificate may be fixed
    lines = [line for line in log.splitlines() if CERTIFICATE_FAILURE.search(line)]
    assert len(lines) == 1, log
    assert tried.key in lines[0]
    assert "CERTIFICATE_VERIFY_FAILED" in lines[0]
    assert "Traceback" not in log
    assert recorder.commands == []
    assert recorder.received == []


def _metrics(running: Running) -> str:
    """The daemon's /metrics text, or nothing while it does not answer."""
    try:
        return running.get("/metrics").text
    except httpx.HTTPError:
        return ""


def test_no_send_starts_once_the_leases_may_have_run_out(
    stack: Callable[..., Stack], plain: Server, recorder: Tracing
) -> None:
    """With renewals failing, a pass stops starting sends a quarter lease before it ends.

    What is left stays ``sending``, for another instance to take over once the lease is out,
    rather than being sent here as well.
    """
    recorder.delay = 0.3
    made = stack(plain.port, recipients=12, max_connections=1)
    made.ledger.lease = timedelta(seconds=2)

    def unreachable() -> int:
        raise OperationError("the database does not answer")

    made.ledger.extend_leases = unreachable  # type: ignore[method-assign]
    outcomes = made.at(DUE)
    statuses = sorted(row.status.value for row in made.ledger.rows().values())
    sent = statuses.count("sent")
    assert 1 <= sent <= 6  # about 1.5 s of sends at 0.3 s each
    assert [o.result for o in outcomes] == ["sent"] * sent
    assert statuses == ["sending"] * (12 - sent) + ["sent"] * sent
    assert len(recorder.received) == sent
