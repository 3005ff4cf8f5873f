"""The waker: one job armed at the next due instant, a periodic sweep, pause and stop.

Real APScheduler on a real event loop, with instants a tenth of a second apart.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from eventwatch.scheduling import Waker

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

HOUR = timedelta(hours=1)
"""A sweep that never comes within a test."""


def soon(seconds: float) -> timedelta:
    """A wait of ``seconds``."""
    return timedelta(seconds=seconds)


class Wakes:
    """A ``wake`` that counts its calls and can take its time.

    APScheduler awaits a coroutine function (a bound ``async def`` is one); a callable object
    with an async ``__call__`` would be run in a thread instead, as the daemon's never is.
    """

    def __init__(self, takes: float = 0) -> None:
        """Each call lasts ``takes`` seconds."""
        self.takes = takes
        self.started: list[float] = []
        self.finished = 0
        self.cancelled = 0
        self.running = 0
        self.most_at_once = 0

    async def wake(self) -> None:
        """Count one wake."""
        self.started.append(asyncio.get_running_loop().time())
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.takes)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
        self.finished += 1


async def stop(waker: Waker) -> None:
    """Stop ``waker`` and let the loop turn: APScheduler shuts down on the loop's next turn."""
    waker.stop()
    await asyncio.sleep(0.01)


def run(scenario: Callable[[asyncio.AbstractEventLoop], Awaitable[None]]) -> None:
    """Run ``scenario`` on a fresh event loop, handing it the loop."""

    async def main() -> None:
        await scenario(asyncio.get_running_loop())

    asyncio.run(main())


def test_wakes_at_the_armed_instant() -> None:
    """Armed 0.1 s ahead, wake runs once, not before that instant."""
    wakes = Wakes()

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, HOUR, loop)
        waker.start()
        armed_at = loop.time()
        waker.arm(soon(0.1))
        await asyncio.sleep(0.2)
        await stop(waker)
        assert len(wakes.started) == 1
        assert wakes.started[0] - armed_at >= 0.09

    run(scenario)


def test_arming_again_replaces_the_earlier_instant() -> None:
    """A second arm moves the one wake: it runs at the new instant only."""
    wakes = Wakes()

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, HOUR, loop)
        waker.start()
        waker.arm(soon(0.1))
        waker.arm(soon(0.2))
        await asyncio.sleep(0.15)
        assert wakes.started == []
        await asyncio.sleep(0.15)
        await stop(waker)
        assert len(wakes.started) == 1

    run(scenario)


def test_arming_none_disarms() -> None:
    """arm(None) takes back the armed instant; with nothing armed it does nothing."""
    wakes = Wakes()

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, HOUR, loop)
        waker.start()
        waker.arm(None)
        waker.arm(soon(0.1))
        waker.arm(None)
        await asyncio.sleep(0.2)
        await stop(waker)
        assert wakes.started == []

    run(scenario)


def test_an_instant_already_past_wakes_at_once() -> None:
    """A due instant armed late (the loop was busy) runs now, not dropped as misfired."""
    wakes = Wakes()

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, HOUR, loop)
        waker.start()
        waker.arm(-timedelta(minutes=5))
        await asyncio.sleep(0.1)
        await stop(waker)
        assert len(wakes.started) == 1

    run(scenario)


def test_the_sweep_wakes_every_interval() -> None:
    """With nothing armed, wake still runs every ``sweep``."""
    wakes = Wakes()

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, timedelta(seconds=0.05), loop)
        waker.start()
        await asyncio.sleep(0.28)
        await stop(waker)
        assert 3 <= len(wakes.started) <= 6

    run(scenario)


def test_wakes_never_overlap() -> None:
    """A sweep that falls due while a wake still runs is not run beside it."""
    wakes = Wakes(takes=0.15)

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, timedelta(seconds=0.03), loop)
        waker.start()
        await asyncio.sleep(0.4)
        waker.pause()
        await asyncio.sleep(0.2)  # the last wake under way finishes
        await stop(waker)
        assert wakes.finished >= 2
        assert wakes.most_at_once == 1

    run(scenario)


def test_state_follows_start_pause_and_stop() -> None:
    """stopped before start, running, paused, then stopped again once the loop has turned."""
    wakes = Wakes()

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, HOUR, loop)
        seen = [waker.state]
        waker.start()
        seen.append(waker.state)
        waker.pause()
        seen.append(waker.state)
        await stop(waker)
        seen.append(waker.state)
        assert seen == ["stopped", "running", "paused", "stopped"]

    run(scenario)


def test_pause_starts_no_new_wake() -> None:
    """Once paused, neither the armed instant nor the sweep wakes."""
    wakes = Wakes()

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, timedelta(seconds=0.05), loop)
        waker.start()
        waker.arm(soon(0.1))
        waker.pause()
        await asyncio.sleep(0.15)
        await stop(waker)
        assert wakes.started == []

    run(scenario)


def test_pause_lets_a_running_wake_finish() -> None:
    """A wake under way when the waker pauses runs to its end."""
    wakes = Wakes(takes=0.15)

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, HOUR, loop)
        waker.start()
        waker.arm(soon(0))
        await asyncio.sleep(0.05)
        assert wakes.running == 1
        waker.pause()
        await asyncio.sleep(0.15)
        await stop(waker)
        assert (wakes.finished, wakes.cancelled) == (1, 0)

    run(scenario)


def test_stop_cancels_a_running_wake() -> None:
    """Stopping cancels a wake still under way, rather than leaving it to run on."""
    wakes = Wakes(takes=5)

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, HOUR, loop)
        waker.start()
        waker.arm(soon(0))
        await asyncio.sleep(0.05)
        assert wakes.running == 1
        await stop(waker)
        assert (wakes.finished, wakes.cancelled) == (0, 1)

    run(scenario)


def test_pause_and_stop_before_start_do_nothing() -> None:
    """A waker never started can be paused and stopped, twice even, without an error."""
    wakes = Wakes()

    async def scenario(loop: asyncio.AbstractEventLoop) -> None:
        waker = Waker(wakes.wake, HOUR, loop)
        waker.pause()
        await stop(waker)
        await stop(waker)
        assert waker.state == "stopped"

    run(scenario)
