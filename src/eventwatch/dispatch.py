"""One pass over the due reminders: claim them, build their messages, deliver, record.

What happens to each reminder is the policy's decision (``policy.on_claim``,
``policy.after_failure``); this module carries it out and records it in the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

from eventwatch import logs, messages, policy
from eventwatch.errors import DeliveryError, MessageError, OperationError
from eventwatch.models import calendar_of

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping
    from datetime import datetime

    from eventwatch.delivery import Delivery
    from eventwatch.ledger import Ledger
    from eventwatch.models import Event
    from eventwatch.policy import Reminder, Row
    from eventwatch.settings import Settings

log = logs.get("dispatch")

_BUILD_CHUNK = 25  # messages built per trip to the worker thread
_BUILD_AHEAD = 100  # built messages waiting for a connection, at most

PREPARE_AHEAD = timedelta(minutes=15)
"""How far ahead messages are built, so that at the due instant there is only sending to do."""

PREPARE_AT_MOST = 10_000
"""Messages kept ready at once (a few KB each); those beyond are built when due."""

CLAIM_AT_MOST = 1000
"""Reminders claimed in one pass; the daemon runs passes until nothing due is left."""

CLAIM_SHARED = 100
"""Reminders claimed in one pass on a shared database: smaller, so that instances share a
batch out rather than one taking it all, and a dead one leaves less for the others to take."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one reminder in one pass."""

    at: datetime
    row: Row
    result: str  # sent, retry, failed, skipped, released
    detail: str
    attempted: bool = False
    """Whether the message was handed to the delivery (not settled before sending)."""
    reason: str = ""
    """Why the delivery failed, when it did: the ``DeliveryError``'s reason."""
    lateness: float | None = None
    """For a sent reminder, seconds from its due instant until it was accepted."""


def _report(outcome: Outcome) -> None:
    """One log line for what became of one reminder."""
    row = outcome.row
    report = log.info if outcome.result in {"sent", "released"} else log.warning
    report(
        f"reminder {outcome.result}",
        key=row.key,
        recipient=row.recipient,
        offset=row.label,
        detail=outcome.detail,
    )


@dataclass
class Dispatcher:
    """Sends what is due, with the plan for the event details and the ledger as the truth."""

    ledger: Ledger
    delivery: Delivery
    sender: messages.Sender
    catch_up: timedelta
    plan: Mapping[str, Reminder]
    attachment: Callable[[Event], bytes]
    deferred: frozenset[str] = frozenset()
    """Calendars another instance holds a newer file of: their rows are left to it."""
    digests: Mapping[str, str] = field(default_factory=dict)
    """The SHA-256 of each calendar's file the plan was made from, by calendar id."""
    prepared: dict[str, messages.Outgoing] = field(default_factory=dict)
    """Messages built ahead of their due instant, dated then; touched only on the loop."""
    halted: bool = False
    """Set at shutdown: claim nothing more and start no new send."""
    held_until: float = field(default=math.inf, repr=False)
    """The monotonic instant this pass's leases surely last until, as last claimed or renewed."""

    @classmethod
    def of(  # noqa: PLR0913 - the parts a dispatcher is made of
        cls,
        settings: Settings,
        ledger: Ledger,
        delivery: Delivery,
        plan: Mapping[str, Reminder],
        attachment: Callable[[Event], bytes],
        *,
        deferred: Collection[str] = (),
        digests: Mapping[str, str] | None = None,
    ) -> Dispatcher:
        """The dispatcher the settings call for: the daemon's and ``simulate``'s alike."""
        return cls(
            ledger=ledger,
            delivery=delivery,
            sender=messages.Sender(settings.mail.from_address, settings.mail.templates_dir),
            catch_up=settings.reminders.catch_up,
            plan=plan,
            attachment=attachment,
            deferred=frozenset(deferred),
            digests=digests or {},
        )

    def halt(self) -> None:
        """Claim nothing more and start no new send; what is claimed stays ``sending``.

        Sends already handed to the delivery go on; the ledger's ``requeue_in_flight`` puts
        the rows left ``sending`` back to pending, to be sent at the next start.
        """
        self.halted = True

    async def prepare_ahead(self, now: datetime) -> int:
        """Build the messages of first attempts due in the next ``PREPARE_AHEAD``; how many.

        Each is dated its due instant and used if it goes out on time (not late);
        a late, retried or changed one is built afresh when sent. The plan is fixed for the
        life of a dispatcher (a reload makes a new one), so what is built stays right.
        """
        rows = await asyncio.to_thread(
            self.ledger.upcoming, now, now + PREPARE_AHEAD, PREPARE_AT_MOST
        )
        wanted = {row.key for row in rows}
        for key in [k for k in self.prepared if k not in wanted]:
            del self.prepared[key]
        missing = [
            row
            for row in rows
            if row.key not in self.prepared
            and row.key in self.plan
            and row.kind == policy.Kind.REMINDER
        ]
        for start in range(0, len(missing), _BUILD_CHUNK):
            chunk = missing[start : start + _BUILD_CHUNK]
            self.prepared.update(await asyncio.to_thread(self._build_ahead, chunk))
        return len(missing)

    def _build_ahead(self, rows: list[Row]) -> dict[str, messages.Outgoing]:
        built = {}
        for row in rows:
            reminder = self.plan[row.key]
            with contextlib.suppress(MessageError):  # it fails, with its reason, when due
                built[row.key] = self._message(reminder, sent_at=row.due)
        return built

    def _message(
        self,
        reminder: Reminder,
        *,
        sent_at: datetime,
        late: bool = False,
    ) -> messages.Outgoing:
        """The message of ``reminder`` for the wire; ``MessageError`` if it cannot be made.

        Whatever goes wrong in making one message is that message's failure alone: a bug
        or an input nobody foresaw must not keep the rest of a batch from going out.
        """
        try:
            message = messages.build(
                reminder,
                self.sender,
                sent_at=sent_at,
                ics=self.attachment(reminder.event),
                late=late,
            )
            return messages.outgoing(message)
        except MessageError:
            raise
        except Exception as exc:
            msg = f"{type(exc).__name__}: {exc}"
            raise MessageError(msg) from exc

    async def run_due(self, now: datetime | None = None) -> list[Outcome]:
        """Claim every reminder due (at ``now``, by default the database's) and settle each one.

        Messages are built in a worker thread a few dozen at a time while earlier ones are
        already being sent, on as many connections as the delivery allows; SQL runs in a
        worker too, so nothing here stalls the event loop. The claims' leases are renewed
        while the pass runs, so that no other instance takes over what is being sent.
        """
        if self.halted:
            return []
        started = time.monotonic()
        limit = CLAIM_SHARED if self.ledger.shared else CLAIM_AT_MOST
        claim = await asyncio.to_thread(self.ledger.claim_due, now, limit, self.deferred)
        if not claim.rows:
            return []
        self.held_until = started + self.ledger.lease.total_seconds()
        keeping = asyncio.create_task(self._keep_leases())
        try:
            return await self._settle_all(claim.rows, claim.now, started)
        finally:
            keeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeping

    async def _keep_leases(self) -> None:
        """Renew this instance's leases every half lease, until cancelled.

        A renewal that fails is logged and tried again; the sends go on (if the database
        stays away past the lease, another instance may send a row again, same Message-ID).
        """
        lease = self.ledger.lease.total_seconds()
        while True:
            await asyncio.sleep(lease / 2)
            asked = time.monotonic()
            try:
                await asyncio.to_thread(self.ledger.extend_leases)
            except OperationError as exc:
                log.warning("leases not renewed", error=str(exc))
            else:
                self.held_until = asked + lease

    def _holding(self) -> bool:
        """Whether this pass's leases last long enough to start a send (a quarter lease more).

        Once they may have run out (renewals failing, the host paused), another instance
        may be sending the same rows: starting more sends would repeat them.
        """
        return time.monotonic() < self.held_until - self.ledger.lease.total_seconds() / 4

    async def _settle_all(self, rows: list[Row], now: datetime, started: float) -> list[Outcome]:
        """Build, send and record ``rows``, claimed at ``now``; what became of each."""
        workers = max(1, self.delivery.parallel)
        queue: asyncio.Queue[tuple[Row, messages.Outgoing] | None] = asyncio.Queue(_BUILD_AHEAD)
        outcomes: list[Outcome] = []

        async def build() -> None:
            await self._build_into(queue, rows, outcomes, now)
            for _ in range(workers):
                await queue.put(None)

        lost: list[Row] = []

        async def send() -> None:
            while (item := await queue.get()) is not None:
                if not self.halted:  # once halted, what is queued stays claimed, then requeued
                    await self._send_held(item, outcomes, lost, now, started)

        try:
            # A task group, not gather: when one part fails (the ledger gone amid a pass), the
            # others stop too, rather than sending on while the next pass sends again.
            async with asyncio.TaskGroup() as group:
                for part in (build(), *(send() for _ in range(workers))):
                    group.create_task(part)
        except ExceptionGroup as failed:
            raise failed.exceptions[0] from None
        for outcome in outcomes:
            _report(outcome)
        if lost:
            log.warning("leases may have run out: not sent here", count=len(lost))
        return outcomes

    async def _send_held(
        self,
        item: tuple[Row, messages.Outgoing],
        outcomes: list[Outcome],
        lost: list[Row],
        now: datetime,
        started: float,
    ) -> None:
        """Send ``item`` if the leases still hold; else leave it ``sending`` for a takeover."""
        if self._holding():
            outcomes.append(await self._deliver(*item, now, started))
        else:
            lost.append(item[0])

    async def _build_into(
        self,
        queue: asyncio.Queue[tuple[Row, messages.Outgoing] | None],
        rows: list[Row],
        outcomes: list[Outcome],
        now: datetime,
    ) -> None:
        """Build the messages of ``rows`` chunk by chunk in a worker and queue them to send.

        Rows settled without sending go to ``outcomes``; once halted, nothing more is built.
        """
        for start in range(0, len(rows), _BUILD_CHUNK):
            if self.halted:
                return
            chunk = rows[start : start + _BUILD_CHUNK]
            ready = {r.key: self.prepared.pop(r.key) for r in chunk if r.key in self.prepared}
            for item in await asyncio.to_thread(self._prepare, chunk, ready, now):
                if isinstance(item, Outcome):
                    outcomes.append(item)
                else:
                    await queue.put(item)

    def _prepare(
        self, rows: list[Row], ready: Mapping[str, messages.Outgoing], now: datetime
    ) -> list[Outcome | tuple[Row, messages.Outgoing]]:
        """Settle the rows not to be sent (gone from the plan, too late); build the others.

        A message in ``ready`` (built ahead, dated its due instant) is used when this is its
        first attempt and it goes out on time.
        """
        prepared: list[Outcome | tuple[Row, messages.Outgoing]] = []
        for row in rows:
            reminder = self.plan.get(row.key)
            current = reminder is not None or self._current(row)
            decision = policy.on_claim(row, reminder, now, self.catch_up, current=current)
            if not isinstance(decision, policy.Send):
                prepared.append(self._settle(row, decision, now))
                continue
            assert reminder is not None  # noqa: S101 - the policy sends only what is planned
            if row.key in ready and row.attempts == 1 and not decision.late:
                prepared.append((row, ready[row.key]))
                continue
            try:
                prepared.append((row, self._message(reminder, sent_at=now, late=decision.late)))
            except MessageError as exc:
                prepared.append(self._settle(row, policy.cannot_make(str(exc)), now, "message"))
        return prepared

    def _current(self, row: Row) -> bool:
        """Whether this plan decides about ``row``: made from the newest file of its calendar.

        Not, once a calendar is found out of date here: its rows are then claimed no more.
        """
        calendar = calendar_of(row.event_uid)
        if calendar in self.deferred:
            return False
        if self.ledger.current(calendar, self.digests.get(calendar)):
            return True
        self.deferred |= {calendar}
        return False

    def _settle(
        self,
        row: Row,
        decision: policy.Skip | policy.Fail | policy.Retry | policy.Release,
        now: datetime,
        reason: str = "",
    ) -> Outcome:
        """Record a decision not to send ``row`` (now, or ever) and say what became of it."""
        match decision:
            case policy.Release():
                self.ledger.release(row.key)
                why = "left to an instance with a newer file of its calendar"
                return Outcome(now, row, "released", why, reason=reason)
            case policy.Skip(why):
                self.ledger.mark_skipped(row.key, why)
                return Outcome(now, row, "skipped", why, reason=reason)
            case policy.Fail(why, detail):
                self.ledger.mark_failed(row.key, why)
                return Outcome(now, row, "failed", detail, reason=reason)
            case policy.Retry(at, why, detail):
                self.ledger.mark_retry(row.key, why, at)
                return Outcome(now, row, "retry", detail, reason=reason)

    async def _deliver(
        self, row: Row, message: messages.Outgoing, now: datetime, started: float
    ) -> Outcome:
        """Hand one message on and record, at once, what became of it.

        ``started`` is the monotonic time at ``now``: the lateness counts the time taken since.
        """
        try:
            reply = await self.delivery.deliver(message)
        except DeliveryError as exc:
            decision = policy.after_failure(
                row, self.plan[row.key], now, permanent=exc.permanent, reply=exc.reply
            )
            failed = await asyncio.to_thread(self._settle, row, decision, now, exc.reason)
            return replace(failed, attempted=True)
        lateness = (now - row.due).total_seconds() + time.monotonic() - started
        await asyncio.to_thread(self.ledger.mark_sent, row.key, message.message_id, now)
        return Outcome(now, row, "sent", reply, attempted=True, lateness=lateness)
