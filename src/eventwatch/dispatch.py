"""One pass over the due reminders: claim them, build their messages, deliver, record."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from eventwatch import logs, messages
from eventwatch.delivery import DeliveryError
from eventwatch.ledger import NOTICE_KINDS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from eventwatch.delivery import Delivery
    from eventwatch.ledger import Ledger, Row
    from eventwatch.models import Event
    from eventwatch.planner import Reminder

log = logs.get("dispatch")

LATE_AFTER = timedelta(seconds=10)
"""A reminder sent later than this after its due instant says that it is late."""

FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one reminder in one pass."""

    at: datetime
    row: Row
    result: str  # sent, retry, failed, skipped
    detail: str


def backoff(attempts: int) -> timedelta:
    """The wait before attempt ``attempts + 1``: 1 minute, doubling, at most 1 hour."""
    return min(FIRST_RETRY * (1 << max(attempts - 1, 0)), LAST_RETRY)


@dataclass
class Dispatcher:
    """Sends what is due, with the plan for the event details and the ledger as the truth."""

    ledger: Ledger
    delivery: Delivery
    sender: messages.Sender
    catch_up: timedelta
    plan: Mapping[str, Reminder]
    attachment: Callable[[Event], bytes]

    async def run_due(self, now: datetime) -> list[Outcome]:
        """Claim every reminder due at ``now`` and settle each one."""
        # SQL and message building run in worker threads: nothing may stall the event loop.
        rows = await asyncio.to_thread(self.ledger.claim_due, now)
        slots = asyncio.Semaphore(self.delivery.parallel)

        async def settle(row: Row) -> Outcome:
            async with slots:
                outcome = await asyncio.to_thread(self._prepare, row, now)
                return outcome if outcome is not None else await self._send(row, now)

        outcomes = list(await asyncio.gather(*(settle(row) for row in rows)))
        for outcome in outcomes:
            row = outcome.row
            log.info(
                "reminder %s key=%r recipient=%s offset=%s detail=%r",
                outcome.result,
                row.key,
                row.recipient,
                row.offset,
                outcome.detail,
            )
        return outcomes

    def _prepare(self, row: Row, now: datetime) -> Outcome | None:
        """Settle a row that is not to be sent (gone from the plan, too late); else None."""
        reminder = self.plan.get(row.key)
        if reminder is None:
            # Reconciling cancels what the plan dropped; a row claimed in between is moot.
            self.ledger.mark_skipped(row.key, "no longer planned")
            return Outcome(now, row, "skipped", "no longer planned")
        return self._too_late(row, reminder, now)

    async def _send(self, row: Row, now: datetime) -> Outcome:
        reminder = self.plan[row.key]
        notice = (row.offset, row.key) if row.offset in NOTICE_KINDS else None
        message = await asyncio.to_thread(
            messages.build,
            reminder,
            self.sender,
            sent_at=now,
            ics=self.attachment(reminder.event),
            late=notice is None and now - row.due > LATE_AFTER,
            notice=notice,
        )
        try:
            reply = await self.delivery.deliver(message)
        except DeliveryError as exc:
            return await asyncio.to_thread(self._failed, row, reminder, now, exc)
        await asyncio.to_thread(self.ledger.mark_sent, row.key, str(message["Message-ID"]), now)
        return Outcome(now, row, "sent", reply)

    def _too_late(self, row: Row, reminder: Reminder, now: datetime) -> Outcome | None:
        """Skip a reminder whose event has begun or that is later than ``catch_up``."""
        if reminder.starts <= now:
            why = "the event had begun"
            if row.attempts > 1:
                self.ledger.mark_failed(row.key, f"{why}; last error: {row.last_error}")
                return Outcome(now, row, "failed", why)
            self.ledger.mark_skipped(row.key, why)
            return Outcome(now, row, "skipped", why)
        lateness = now - row.due
        # catch_up is for reminders missed while eventwatch was down; a retry is never too late,
        # and a change notice is worth sending until the event begins.
        if row.attempts <= 1 and row.offset not in NOTICE_KINDS and lateness > self.catch_up:
            why = f"due {lateness} before it could be sent (catch_up is {self.catch_up})"
            self.ledger.mark_skipped(row.key, why)
            return Outcome(now, row, "skipped", why)
        return None

    def _failed(self, row: Row, reminder: Reminder, now: datetime, exc: DeliveryError) -> Outcome:
        """Retry a transient failure with backoff until the event begins; else give up."""
        if exc.permanent:
            self.ledger.mark_failed(row.key, exc.reply)
            return Outcome(now, row, "failed", exc.reply)
        retry_at = now + backoff(row.attempts)
        if retry_at >= reminder.starts:
            self.ledger.mark_failed(row.key, f"{exc.reply}; no time left to retry")
            return Outcome(now, row, "failed", exc.reply)
        self.ledger.mark_retry(row.key, exc.reply, retry_at)
        return Outcome(now, row, "retry", f"{exc.reply}; next attempt {retry_at:%H:%M:%S}Z")
