"""The only APScheduler import: wake the daemon at the next due instant, and sweep now and then.

One job is re-armed to the earliest pending reminder, plus a periodic safety sweep: not one job
per reminder, so that 100,000 pending reminders cost nothing here. The ledger, not the job
store, is the truth: APScheduler deletes a one-shot job before it has run to the end, and its
default grace of one second would drop a late run without a word (so there is none).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable
    from datetime import timedelta

_JOB = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}


class Waker:
    """Calls ``wake`` at the instant last armed and every ``sweep``."""

    def __init__(
        self,
        wake: Callable[[], Awaitable[None]],
        sweep: timedelta,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        """Prepare the scheduler on the daemon's own event loop; nothing runs until ``start``."""
        self._wake = wake
        self._scheduler = AsyncIOScheduler(event_loop=loop, timezone="UTC")
        self._scheduler.add_job(
            wake, IntervalTrigger(seconds=sweep.total_seconds()), id="sweep", **_JOB
        )

    def start(self) -> None:
        """Start the scheduler."""
        self._scheduler.start()

    def arm(self, wait: timedelta | None) -> None:
        """Wake after ``wait`` (replacing the wake armed before); None disarms.

        A wait, not an instant: the instant comes from the ledger's clock, which the host's
        may not agree with; APScheduler counts from the host's.
        """
        if wait is None:
            if self._scheduler.get_job("next") is not None:
                self._scheduler.remove_job("next")
            return
        self._scheduler.add_job(
            self._wake,
            DateTrigger(run_date=datetime.now(UTC) + wait),  # past already: runs now
            id="next",
            replace_existing=True,
            **_JOB,
        )

    @property
    def state(self) -> str:
        """``running``, ``paused`` or ``stopped``, as APScheduler reports it."""
        return {STATE_RUNNING: "running", STATE_PAUSED: "paused"}.get(
            self._scheduler.state, "stopped"
        )

    def pause(self) -> None:
        """Start no new wake; a wake already running goes on (``stop`` would cancel it)."""
        if self._scheduler.running:
            self._scheduler.pause()

    def stop(self) -> None:
        """Stop the scheduler; APScheduler's asyncio executor cancels a wake still running."""
        if self._scheduler.state != STATE_STOPPED:
            self._scheduler.shutdown(wait=False)
