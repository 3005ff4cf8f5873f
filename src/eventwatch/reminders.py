"""The reminder service: keep the ledger on the plan, and send what falls due.

It decides nothing about a reminder itself: the plan, the changes to the ledger and the
notices owed are the policy's (``policy.py``); sending is the dispatcher's.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from eventwatch import logs, policy
from eventwatch.delivery import delivery_for
from eventwatch.dispatch import Dispatcher
from eventwatch.errors import OperationError, StateError
from eventwatch.scheduling import Waker

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence

    from eventwatch.dispatch import Outcome
    from eventwatch.inputs import Inputs
    from eventwatch.ledger import Ledger
    from eventwatch.metrics import Metrics
    from eventwatch.models import Event

log = logs.get("reminders")


class _Revision(Protocol):
    @property
    def sequence(self) -> int:
        """The SEQUENCE a feed shows for the event."""


class _Entry(Protocol):
    @property
    def event(self) -> Event:
        """The event as served."""

    @property
    def revision(self) -> _Revision:
        """Its revision as served."""


class Served(Protocol):
    """What the service reads of the feeds being served (``publication.Publication`` is one)."""

    @property
    def entries(self) -> Sequence[_Entry]:
        """Every event with its revision."""

    @property
    def bumped(self) -> Sequence[str]:
        """UIDs of events whose SEQUENCE rose since they were last published."""

    def attachment(self, event_uid: str) -> bytes:
        """Event ``event_uid`` alone, as the calendar attached to its messages."""


SWEEP = timedelta(minutes=1)
"""How often the ledger is looked at whatever was armed: a safety net, not the timer."""

RETRY_FIRST = timedelta(seconds=1)
RETRY_AT_MOST = timedelta(seconds=30)
"""After a failed pass (the database away), try again after 1 s, doubling up to 30 s."""

GRACE = 10.0
"""Seconds that sends in flight at shutdown may take to finish."""


def plan_of(loaded: Inputs, known: policy.Known | None = None) -> list[policy.Reminder]:
    """Every reminder the calendars of ``loaded`` plan (see ``policy.reminders``)."""
    return policy.reminders(loaded.calendars, loaded.settings.reminders, known)


@dataclass(frozen=True, slots=True)
class Health:
    """What ``/healthz`` and systemd's STATUS= say about the reminders."""

    scheduler: str
    next_due: datetime | None
    failed: int
    pending: int
    problem: str | None = None
    """Why the last pass over the due reminders failed, while it keeps failing."""


class Reminders:
    """Reconciles the plan with the ledger and wakes at each due instant to send."""

    def __init__(
        self,
        ledger: Ledger,
        clock: Callable[[], datetime] | None = None,
        metrics: Metrics | None = None,
        guard: Callable[[], str | None] = lambda: None,
    ) -> None:
        """Nothing is sent until ``start``; what happens is counted in ``metrics``, if given.

        Every decision goes by the ledger's clock (the database's, which instances sharing
        it agree on) unless ``clock`` is given: a test's or a simulation's, never a host's.
        ``guard`` says why sending must stop (the state folder was removed), or None.
        """
        self.ledger = ledger
        self.clock = clock
        self.metrics = metrics
        self.guard = guard
        self.dispatcher: Dispatcher | None = None
        self.waker: Waker | None = None
        self._entries: dict[str, _Entry] = {}
        self._built: Served | None = None
        self._busy = asyncio.Lock()
        self.known = policy.Known()
        """What each calendar planned last time: a reload plans only the calendars that changed."""
        self._stopping = False
        self._preparing: asyncio.Task[int] | None = None
        self._waking: asyncio.Task[object] | None = None
        self._abandoned = False
        self.problem: str | None = None
        """Why the last pass failed; None once a pass succeeds."""
        self._failing: str | None = None
        self._retry = RETRY_FIRST
        self._first_wake: asyncio.Task[None] | None = None

    def _attachment(self, event: Event) -> bytes:
        """The event as a one-event calendar, from the publication being served."""
        assert self._built is not None  # noqa: S101 - set by replan before anything is sent
        return self._built.attachment(event.uid)

    async def start(
        self,
        loaded: Inputs,
        built: Served,
        *,
        send_now: bool = True,
        deferred: Collection[str] = (),
    ) -> None:
        """Send again what a crash left in flight, take the plan, and wake when due.

        With ``send_now`` false, what is due already (a catch-up after downtime, perhaps
        thousands) is sent in the background, so that the daemon serves and says it is ready
        at once rather than after the batch.
        """
        requeued = await asyncio.to_thread(self.ledger.requeue_in_flight)
        if requeued:
            log.warning("in flight at the last stop, sending again", count=requeued)
        # Also a poll: what another instance planned, or left when it died, is due here too.
        sweep = min(SWEEP, self.ledger.lease / 4)
        self.waker = Waker(self.wake, sweep, asyncio.get_running_loop())
        self.waker.start()
        await self.replan(loaded, built, send=send_now, deferred=deferred)
        if not send_now:
            self._first_wake = asyncio.create_task(self.wake())

    async def replan(
        self,
        loaded: Inputs,
        built: Served,
        plan: list[policy.Reminder] | None = None,
        *,
        send: bool = True,
        deferred: Collection[str] = (),
    ) -> None:
        """Reconcile the ledger with the calendars' plan, then send what is due.

        ``plan`` is ``plan_of(loaded)`` if the caller has made it already; ``send`` false
        leaves the sending to the next wake. Calendars in ``deferred`` are left to the
        instances that hold a newer file of them: neither reconciled nor sent from here.
        """
        settings = loaded.settings
        if plan is None:
            plan = await asyncio.to_thread(plan_of, loaded, self.known)
        # No pass may run between reconciling and the new dispatcher: with the old plan it
        # would skip, as no longer planned, a notice or reminder the new plan just added.
        async with self._busy:
            result = await asyncio.to_thread(
                self.ledger.reconcile, policy.follow(plan, deferred), self._given()
            )
            log.info(
                "planned",
                reminders=len(plan),
                new=result.inserted,
                cancelled=result.cancelled,
                revived=result.revived,
            )
            self._entries = {e.event.uid: e for e in built.entries}
            self._built = built
            planned = {r.key: r for r in plan}
            planned.update(await asyncio.to_thread(self._notices, built, plan))
            await self._stop_preparing()  # what it builds is for the old plan
            previous = self.dispatcher.delivery if self.dispatcher is not None else None
            if previous is not None and not previous.fits(settings):
                # The delivery settings changed: say QUIT on the old server's idle connections.
                await previous.close()
                previous = None
            self.dispatcher = Dispatcher.of(
                settings,
                self.ledger,
                previous or delivery_for(settings),
                planned,
                self._attachment,
                deferred=deferred,
                digests=loaded.digests,
            )
        if send:
            await self.wake()

    def _notices(self, built: Served, plan: list[policy.Reminder]) -> dict[str, policy.Reminder]:
        """Queue the notices the policy owes for events whose SEQUENCE rose; all pending ones."""
        now = self._now()
        known = policy.recipients(plan)
        for uid in built.bumped:
            changed = self._entries[uid]
            owed = policy.notices(
                changed.event, changed.revision.sequence, self.ledger.rows_of(uid), now, known
            )
            if owed:
                count = self.ledger.add(owed)
                log.info("notices queued", kind=owed[0].kind, event=uid, count=count)
        found: dict[str, policy.Reminder] = {}
        for row in self.ledger.pending_notices():
            entry = self._entries.get(row.event_uid)
            if entry is None or row.sequence is None:
                continue  # the event is gone; the dispatcher skips the row as no longer planned
            found[row.key] = policy.notice(
                entry.event, row.kind, row.sequence, row.recipient, row.due, known
            )
        return found

    async def wake(self) -> None:
        """Send everything due now, then arm the next wake at the earliest pending instant."""
        if self._stopping or self.dispatcher is None or self.waker is None:
            return
        async with self._busy:
            self._waking = asyncio.current_task()
            try:
                self._check_guard()
                if self.problem is not None:
                    # The failed pass left its claims ``sending``; no other pass runs now and
                    # no other process shares the state folder, so they are stale: send again.
                    await asyncio.to_thread(self.ledger.requeue_in_flight)
                upcoming = await self._send_due(self.dispatcher)
            except asyncio.CancelledError:
                if not self._abandoned:
                    raise
                return  # stop() gave these sends up; their rows go back to pending
            except Exception as exc:  # noqa: BLE001 - a failed pass must not end the sending
                self._failed(exc)
                self.waker.arm(self._retry)  # and the sweep, whichever comes first
                self._retry = min(self._retry * 2, RETRY_AT_MOST)
                return
            finally:
                self._waking = None
            if self.problem is not None:
                log.info("sending works again", after=self.problem)
                self.problem = None
                self._failing = None
                self._retry = RETRY_FIRST
            self.waker.arm(upcoming)
        if self._preparing is None or self._preparing.done():
            # Build what falls due soon while nothing is due; a reload makes a new dispatcher.
            self._preparing = asyncio.create_task(self._prepare(self.dispatcher))

    async def _send_due(self, dispatcher: Dispatcher) -> timedelta | None:
        """Send what is due, again while more fell due meanwhile; how long until the next.

        What falls due while a pass is sending (a slow server, a batch beyond one claim) goes
        in the next pass at once: armed for an instant already past, APScheduler would skip
        the job while this one still runs, leaving it to the sweep a minute later. The wait
        is measured by the ledger's clock; the host's may be skewed, but not its seconds.
        """
        while True:
            outcomes = await dispatcher.run_due(self._given())
            self._count(outcomes)
            upcoming = await asyncio.to_thread(self.ledger.next_due, dispatcher.deferred)
            now = await asyncio.to_thread(self._now)
            if upcoming is None:
                return None
            if not outcomes:
                # Due but not claimed: another instance holds it for a moment. Look again
                # soon rather than at once, which would spin until that instance commits.
                return max(upcoming - now, RETRY_FIRST)
            if upcoming > now or dispatcher.halted:
                return upcoming - now

    def _given(self) -> datetime | None:
        """The test's or simulation's instant, if it gave a clock; else None: the ledger's."""
        return None if self.clock is None else self.clock()

    def _now(self) -> datetime:
        """The instant decisions go by: the given clock's, else the ledger's (may do SQL)."""
        return self.ledger.now() if self.clock is None else self.clock()

    def _check_guard(self) -> None:
        """Raise ``StateError`` if sending must stop (the state folder is gone)."""
        if (unsafe := self.guard()) is not None:
            raise StateError(unsafe)

    def _failed(self, exc: Exception) -> None:
        """Log one line for a pass that failed (not again while it fails alike); degrade health.

        Claimed rows stay ``sending``; the next pass that works puts this instance's back to
        pending. What failed (a full disk, a database gone) is for the admin, whom
        ``/healthz`` tells.
        """
        problem = f"{type(exc).__name__}: {exc}"
        # One line per state: a database going away fails in several wordings in a row.
        failing = "ledger" if isinstance(exc, OperationError) else problem
        if failing != self._failing:
            log.error("sending failed, trying again", error=problem)
        self._failing = failing
        self.problem = problem

    async def _prepare(self, dispatcher: Dispatcher) -> int:
        """Build ahead what falls due soon; a failure here only means building it when due."""
        try:
            return await dispatcher.prepare_ahead(await asyncio.to_thread(self._now))
        except Exception as exc:  # noqa: BLE001 - whatever failed, sending when due builds anew
            log.warning("preparing ahead failed", error=str(exc))
            return 0

    async def _stop_preparing(self) -> None:
        if self._preparing is not None:
            self._preparing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._preparing

    def _count(self, outcomes: list[Outcome]) -> None:
        if self.metrics is None:
            return
        for outcome in outcomes:
            if not outcome.attempted:
                continue
            self.metrics.attempts.labels(outcome.result).inc()
            if outcome.reason:
                self.metrics.failures.labels(outcome.reason).inc()
            if outcome.lateness is not None:
                self.metrics.lateness.observe(max(0.0, outcome.lateness))

    def health(self) -> Health:
        """The scheduler's state and what the ledger holds; ``OperationError`` if it fails."""
        counts = self.ledger.counts()
        return Health(
            scheduler=self.waker.state if self.waker is not None else "stopped",
            next_due=self.ledger.next_due(),
            failed=counts.get("failed", 0),
            pending=counts.get("pending", 0),
            problem=self.guard() or self.problem,
        )

    async def stop(self) -> None:
        """Stop claiming, let sends in flight finish (up to ``GRACE``), requeue the rest."""
        self._stopping = True
        if self.waker is not None:
            self.waker.pause()
        if self.dispatcher is not None:
            self.dispatcher.halt()
        await self._stop_preparing()
        try:
            async with asyncio.timeout(GRACE):
                await self._busy.acquire()
        except TimeoutError:
            # A send still hangs after the grace: give it up; its row goes back to pending
            # and is sent again, with the same Message-ID, at the next start.
            waking = self._waking
            if waking is not None:
                log.warning("sends in flight did not finish in time", grace=GRACE)
                self._abandoned = True
                waking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waking
        if self._first_wake is not None and not self._first_wake.done():
            self._first_wake.cancel()  # what it has not sent is put back to pending below
            with contextlib.suppress(asyncio.CancelledError):
                await self._first_wake
        if self.waker is not None:
            self.waker.stop()
        await self._give_back()
        if self.dispatcher is not None:
            await self.dispatcher.delivery.close()

    async def _give_back(self) -> None:
        """Put this instance's unfinished claims back to pending, if the database answers.

        If it does not, they stay ``sending`` until their lease runs out; then any instance
        (this one, started again) takes them over.
        """
        try:
            requeued = await asyncio.to_thread(self.ledger.requeue_in_flight)
        except OperationError as exc:
            log.warning("claims not given back: taken over when their lease ends", error=str(exc))
            return
        if requeued:
            log.warning("unfinished at stop, back to pending", count=requeued)
