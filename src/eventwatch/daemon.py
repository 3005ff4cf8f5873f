"""The composition root: one event loop serving feeds, watching the calendar files."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import uvicorn

from eventwatch import (
    calendars,
    feedcache,
    feeds,
    files,
    httpserver,
    inputs,
    logs,
    publication,
    reminders,
    systemd,
    web,
)
from eventwatch import export as static
from eventwatch.errors import (
    EventwatchError,
    InvalidInputError,
    OperationError,
    Problem,
    SettingsError,
    StateError,
)
from eventwatch.ledger import DATABASE_FILE, Ledger, make_state_folder
from eventwatch.metrics import Metrics

if TYPE_CHECKING:
    import socket
    from collections.abc import Collection, Coroutine, Iterable, Iterator, Mapping

    from eventwatch.revisions import Revision
    from eventwatch.settings import Settings


log = logs.get("daemon")

T = TypeVar("T")

SETTLE = timedelta(seconds=1)
"""How long the files must stay unchanged before a change is read."""

SETTLE_AT_MOST = 30
"""Settle periods waited at most: a file rewritten forever is read after half a minute."""


def now() -> datetime:
    """The current instant; the daemon is the one place that reads the clock."""
    return datetime.now(UTC)


def publish(
    loaded: inputs.Inputs,
    store: publication.RevisionStore,
    renderer: feeds.Renderer,
    deferred: Collection[str] = (),
    last: publication.Publication | None = None,
) -> publication.Publication:
    """Render every feed of ``loaded``; ``keep`` saves the encoded events for the next start.

    Revisions come from ``store`` (the ledger, or a read-only view of it); the calendars in
    ``deferred`` change nothing there (see ``Ledger.deferred``). Events ``last`` (built from
    the same store) holds unchanged are taken from it.
    """
    options = publication.Options.of(loaded.settings)
    return publication.build(
        loaded.calendars,
        options,
        store,
        renderer,
        now(),
        deferred=deferred,
        last=last,
        shared=loaded.settings.database.postgres,
    )


def keep(
    built: publication.Publication,
    state_dir: Path,
    last: publication.Publication | None = None,
) -> None:
    """Save the encoded events of ``built``'s full feed for the next start (see feedcache).

    Not when the feed is ``last``'s, saved then. The daemon calls it once the new feeds are
    served: at 100,000 events writing the cache takes about a second.
    """
    feed = built.rendered[publication.ALL]
    if last is not None and last.rendered[publication.ALL] is feed:
        return
    try:
        feedcache.save(state_dir, feed.body, built.renderer.placements(feed.body))
    except OSError as exc:
        log.warning("feed cache not saved", error=str(exc))


SWITCH_INTERVAL = 0.001
"""Seconds a thread may hold the GIL while another waits for it (``sys.setswitchinterval``)."""

DIGESTS_FILE = "calendar-digests.json"
"""The SHA-256 of each calendar file the daemon last applied, kept across restarts."""


def applied_digests(state_dir: Path) -> dict[str, str] | None:
    """The calendar files the daemon on ``state_dir`` last applied; None if unknown."""
    try:
        found = json.loads((state_dir / DIGESTS_FILE).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("calendar digests unreadable, taken as unknown", error=str(exc))
        return None
    if not isinstance(found, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in found.items()
    ):
        log.warning("calendar digests unreadable, taken as unknown", error="not a mapping")
        return None
    return found


def _changed(last: Mapping[str, str], now: Mapping[str, str]) -> set[str]:
    """The calendars whose file differs between ``last`` and ``now``, appeared or went."""
    return {c for c in set(last) | set(now) if last.get(c) != now.get(c)}


def settle() -> None:
    """Take what is alive now out of the garbage collector's sight, for good: at the start only.

    The records, revisions and feeds loaded at the start live long; a full collection walks
    every one of them (0.3 s at 100,000 events, the event loop stalled meanwhile) and frees
    nothing, since they hold no reference cycles. Objects frozen here are still freed by
    reference counting once unused (tests/test_publication.py checks that a replaced
    publication holds no cycle), and a reload replaces only what changed, which the
    collector then walks. The cycles the load left as garbage are collected first.

    Not after a reload: connections open then (a transport and its socket hold each other)
    would be frozen with it, and once closed never freed: the second review counted 16,000
    objects kept after 200 reloads with clients connected. Before anything is served there
    is no such object.
    """
    gc.collect()
    gc.freeze()


def warm(renderer: feeds.Renderer, state_dir: Path) -> None:
    """Seed ``renderer`` with the events an earlier run encoded, if their cache is usable."""
    found = feedcache.load(state_dir)
    if found is None:
        log.info("feed cache unusable, rendering cold")
        return
    body, placements = found
    renderer.seed(body, placements)
    log.info("feed cache loaded", events=len(placements))


def files_state(config: Path, calendars_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, modification time and size of the settings file and each calendar file."""
    paths = [config]
    with contextlib.suppress(OSError):
        paths += sorted(calendars_dir.glob("*.toml"))
    found = []
    for path in paths:
        with contextlib.suppress(OSError):
            stat = path.stat()
            found.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(found)


class StateLock:
    """An OS lock on the state folder, so that a second daemon on it exits instead of sending.

    It also notices the folder being removed or replaced while the daemon runs: a second
    daemon could then start beside this one on a new, empty ledger and send again what this
    one sent, so this one must stop sending at once.
    """

    FILE = "eventwatch.lock"

    def __init__(self, state_dir: Path) -> None:
        """Lock; ``OperationError`` if another daemon has the lock, ``StateError`` if unusable."""
        self.path = Path(os.path.normpath(state_dir / self.FILE))
        try:
            self._handle = self.path.open("ab")
        except OSError as exc:
            msg = f"{self.path}: cannot open the lock file: {exc.strerror}"
            raise StateError(msg) from exc
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._handle.close()
            msg = f"{self.path.parent}: another eventwatch is running on this state folder"
            raise OperationError(msg) from None
        self._identity = _identity(os.fstat(self._handle.fileno()))

    def intact(self) -> str | None:
        """None while the lock file is still the one locked; else what became of it."""
        try:
            now = _identity(self.path.stat())
        except OSError as exc:
            return f"{self.path}: {exc.strerror}: the state folder was removed or moved"
        if now != self._identity:
            return f"{self.path}: replaced while running: the state folder was removed or moved"
        return None

    def close(self) -> None:
        """Release the lock."""
        self._handle.close()


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


class SenderLoop:
    """An event loop of its own, in a thread, for the reminders.

    Feeds are served on the main loop. Under thousands of requests a second each turn of that
    loop takes milliseconds, and an SMTP transaction needs several turns in a row: sharing
    it, reminders fell seconds behind. On their own loop they keep time whatever HTTP does.
    """

    def __init__(self) -> None:
        """Start the loop in its thread."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="reminders")
        self._thread.start()

    async def call(self, work: Coroutine[object, object, T]) -> T:
        """Run ``work`` on the reminders' loop and wait for it from the calling loop."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, self._loop))

    def close(self) -> None:
        """Cancel what is left on the loop, stop it and wait for its thread."""

        async def finish() -> None:
            current = asyncio.current_task()
            left = [t for t in asyncio.all_tasks() if t is not current]
            for task in left:
                task.cancel()
            await asyncio.gather(*left, return_exceptions=True)
            await self._loop.shutdown_default_executor()

        asyncio.run_coroutine_threadsafe(finish(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM, SIGINT and SIGHUP."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signals to the daemon."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start as uvicorn does, then say that the port answers."""
        await super().startup(sockets)
        if self.started:
            self.listening.set()


def status_line(
    built: publication.Publication, health: reminders.Health | None, error: str | None
) -> str:
    """What ``systemctl status`` shows: events, the next reminder, failures, a failed reload."""
    parts = [f"{built.event_count} events"]
    if health is not None:
        upcoming = (
            f"{health.next_due.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if health.next_due else "none"
        )
        parts += [f"next reminder {upcoming}", f"{health.failed} failed"]
    line = ", ".join(parts)
    if health is not None and health.problem is not None:
        line += f"; sending FAILED: {health.problem}"
    if error is not None:
        line += f"; last reload FAILED, serving the last good calendars: {error}"
    return line


class Daemon:
    """One run of ``eventwatch run``."""

    def __init__(self, config: Path | None, overrides: list[str] | None) -> None:
        """Remember where the settings come from; nothing is read until ``run``."""
        self.config = config
        self.overrides = overrides
        self.renderer = feeds.Renderer()
        self.server: _Server | None = None
        self.reminders: reminders.Reminders
        self.sender: SenderLoop
        self.stopping = asyncio.Event()
        self.reload_requested = asyncio.Event()
        self.notifier = systemd.Notifier()
        self.metrics = Metrics()
        self.lock: StateLock
        self._digests: Mapping[str, str] | None = None
        """The calendar files last applied, by calendar id (their SHA-256); None: never yet."""
        self._deferring: set[str] = set()
        self._ledger_silent = False
        self._known = calendars.Known()
        """The calendar files read so far: a reload reads only those that changed."""
        self._published: publication.Publication | None = None
        self._unsaved: tuple[publication.Publication, Path, publication.Publication | None] | None
        self._unsaved = None
        """A reload's publication whose feed cache is still to save (see ``keep``)."""
        """The last publication built, whose unchanged events the next build reuses."""

    def _load(self) -> inputs.Inputs:
        return inputs.load(self.config, self.overrides, self._known)

    async def run(self) -> None:
        """Load everything, serve until SIGTERM or SIGINT, then stop cleanly.

        Invalid settings or calendars raise ``InvalidInputError`` before anything is served.
        A signal during start-up stops it cleanly once the step under way is done.
        """
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop, signum)
        loop.add_signal_handler(signal.SIGHUP, self.reload_requested.set)
        try:
            await self._start()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)

    def _stopped_early(self) -> bool:
        """Whether a signal came during start-up: then say so, and start no further."""
        if self.stopping.is_set():
            log.info("stopped before ready")
        return self.stopping.is_set()

    async def _start(self) -> None:
        loaded = await asyncio.to_thread(self._load)
        settle()
        settings = loaded.settings
        logs.configure(settings.log.level, settings.log.format)
        log.info(
            "loaded",
            calendars=len(loaded.calendars),
            events=sum(len(c.events) for c in loaded.calendars),
            calendars_dir=settings.calendars_dir,
            database=settings.database.shown_url or settings.state_dir / DATABASE_FILE,
        )
        if self._stopped_early():
            return
        await asyncio.to_thread(make_state_folder, settings.state_dir)
        lock = StateLock(settings.state_dir)  # before the ledger: a second daemon stops here
        try:
            ledger = await asyncio.to_thread(Ledger.of, settings.database, settings.state_dir)
        except EventwatchError:
            lock.close()
            raise
        try:
            sock = systemd.listening_socket(settings.server.host, settings.server.port)
        except OperationError:
            ledger.close()
            lock.close()
            raise
        await asyncio.to_thread(warm, self.renderer, settings.state_dir)
        self.lock = lock
        try:
            await self._serve(loaded, ledger, sock)
        finally:
            sock.close()
            ledger.close()
            lock.close()
            self.notifier.close()

    def _deferred(self, loaded: inputs.Inputs, ledger: Ledger) -> set[str]:
        """The calendars another instance has a newer file of; logged when that changes.

        A calendar counts as changed here when its file differs from the one last applied
        (by this daemon, or by this state folder's last one: an edit made while it was
        stopped counts), appeared or is gone. A state folder that never applied any has seen
        nothing change.
        """
        if self._digests is None:
            self._digests = applied_digests(loaded.settings.state_dir)
        last = self._digests
        changed = set() if last is None else _changed(last, loaded.digests)
        found = ledger.deferred(loaded.digests, changed)
        if found != self._deferring:
            if found:
                log.warning(
                    "another instance has a newer file of these calendars: left to it",
                    calendars=", ".join(sorted(found)),
                )
            else:
                log.info("every calendar file is the newest", calendars=len(loaded.digests))
        self._deferring = found
        return found

    def _applied(self, loaded: inputs.Inputs) -> None:
        """Remember the calendar files just applied, here and in the state folder."""
        self._digests = loaded.digests
        path = loaded.settings.state_dir / DIGESTS_FILE
        try:
            files.write_atomically(path, json.dumps(dict(loaded.digests), indent=1).encode())
        except OSError as exc:
            log.warning("calendar digests not saved", error=str(exc))

    def _publish(
        self, loaded: inputs.Inputs, ledger: Ledger, deferred: Collection[str] = ()
    ) -> publication.Publication:
        began = time.perf_counter()
        built = publish(loaded, ledger, self.renderer, deferred, self._published)
        self._published = built
        self.metrics.render.observe(time.perf_counter() - began)
        self.metrics.loaded(len(loaded.calendars), built.event_count)
        return built

    async def _serve(self, loaded: inputs.Inputs, ledger: Ledger, sock: socket.socket) -> None:
        settings = loaded.settings
        deferred = await asyncio.to_thread(self._deferred, loaded, ledger)
        built = await asyncio.to_thread(self._publish, loaded, ledger, deferred)
        self._unsaved = (built, settings.state_dir, None)  # saved once ready (``_save_cache``)
        settle()
        await asyncio.to_thread(self._applied, loaded)
        if self._stopped_early():
            return
        self.metrics.reloaded(time.time(), success=True)
        self.reminders = reminders.Reminders(ledger, metrics=self.metrics, guard=self.lock.intact)
        self.metrics.watch_ledger(ledger.counts)
        state = web.State(
            publication=built,
            base_url=settings.server.base_url,
            max_age=settings.feeds.max_age,
            gzip=settings.feeds.gzip,
            last_reload=now(),
            health=self.reminders.health,
            metrics=self.metrics,
        )
        config = httpserver.config(web.create_app(state, now))
        self.server = _Server(config)
        self.server.should_exit = self.stopping.is_set()
        self.sender = SenderLoop()
        try:
            # send_now=False: serve at once while a catch-up after downtime goes out.
            start = self.reminders.start(loaded, built, send_now=False, deferred=deferred)
            await self.sender.call(start)
        except BaseException:
            await self.sender.call(self.reminders.stop())
            await asyncio.to_thread(self.sender.close)
            raise
        host, port = sock.getsockname()[:2]  # uvicorn closes the socket when it stops
        serving = asyncio.create_task(self.server.serve(sockets=[sock]))
        helpers: list[asyncio.Task[None]] = []
        try:
            listening = asyncio.create_task(self.server.listening.wait())
            await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
            listening.cancel()
            if self.server.started and not self.stopping.is_set():
                log.info("ready", address=f"{host}:{port}", status=await self._ready(state))
                helpers.append(asyncio.create_task(self._watch(loaded, ledger, state)))
                if self.notifier.watchdog is not None:
                    helpers.append(asyncio.create_task(self._watchdog(self.notifier.watchdog)))
            await serving
        finally:
            for helper in helpers:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
            if not self.stopping.is_set():  # stopped otherwise than by a signal
                self.notifier.notify(stopping=1, status="stopping")
            await self._save_cache()  # if stopped before the watcher saved it
            try:
                await self.sender.call(self.reminders.stop())
            finally:
                # Even if stopping the reminders failed: its thread would keep the process up.
                await asyncio.to_thread(self.sender.close)
        log.info("stopped")

    async def _ready(self, state: web.State) -> str:
        """Tell systemd we serve (again), with a status line a person can read; the line."""
        line = await self._status(state)
        self.notifier.notify(ready=1, status=line)
        return line

    async def _status(self, state: web.State) -> str:
        try:
            health = await asyncio.to_thread(self.reminders.health)
        except OperationError as exc:
            if not self._ledger_silent:  # one line when it stops answering, not every round
                log.warning("ledger does not answer", error=str(exc))
            self._ledger_silent = True
            health = None
        else:
            if self._ledger_silent:
                log.info("ledger answers again")
            self._ledger_silent = False
        return status_line(state.publication, health, state.last_reload_error)

    async def _watchdog(self, interval: timedelta) -> None:
        """Ping systemd's watchdog while both event loops answer: a blocked one stops the pings.

        The ping is sent from the serving loop once the reminders' loop has run a step within
        the interval, so a daemon stuck on either side is restarted by systemd.
        """
        seconds = interval.total_seconds()
        while True:
            try:
                async with asyncio.timeout(seconds):
                    await self.sender.call(asyncio.sleep(0))
            except TimeoutError:
                log.warning("the reminders' event loop does not answer: no watchdog ping")
            else:
                self.notifier.notify(watchdog=1)
            await asyncio.sleep(seconds)

    def _stop(self, signum: int) -> None:
        """Signal handler: only sets state; the server's own loop does the stopping."""
        log.info("stopping", signal=signal.Signals(signum).name)
        self.notifier.notify(stopping=1, status="stopping: finishing sends in flight")
        self.stopping.set()
        if self.server is not None:
            self.server.should_exit = True

    async def _save_cache(self) -> None:
        """Save the feed cache the start or the last reload left to save, once it is ready.

        For the next start only (see ``keep``): a second at 100,000 events, which neither
        READY=1 nor the new feeds wait for.
        """
        if self._unsaved is not None:
            unsaved, self._unsaved = self._unsaved, None
            await asyncio.to_thread(keep, *unsaved)

    async def _watch(self, loaded: inputs.Inputs, ledger: Ledger, state: web.State) -> None:
        """Reload on SIGHUP, or when the files change and settle; keep the last good ones.

        The status line for systemd is refreshed on each round, as the next reminder moves on.
        Whatever fails in a round is logged in one line and shown by ``/healthz``; the loop
        goes on, and tries again at the next round what failed otherwise than by bad input.
        """
        seen = await asyncio.to_thread(
            files_state, loaded.config_file, loaded.settings.calendars_dir
        )
        failure: str | None = None
        await self._save_cache()
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(loaded.settings.feeds.reload_every.total_seconds()):
                    await self.reload_requested.wait()
            asked = self.reload_requested.is_set()
            self.reload_requested.clear()
            try:
                current = await asyncio.to_thread(
                    files_state, loaded.config_file, loaded.settings.calendars_dir
                )
                if current == seen and not asked and failure is None:
                    self.notifier.notify(status=await self._status(state))
                    continue
                if asked:
                    log.info("reload asked", signal="SIGHUP")
                    self.notifier.notify(
                        reloading=1,
                        monotonic_usec=time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000,
                        status="reloading",
                    )
                else:
                    current = await self._settled(loaded, current)
                fresh = await self._reload(ledger, state)
                seen, failure = current, None
                if fresh is not None:
                    loaded = fresh
                await self._ready(state)
                await self._save_cache()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive any one failure
                problem = f"{type(exc).__name__}: {exc}"
                if problem != failure:
                    # One line for the journal (TRY400): the cause is in it, a traceback is noise.
                    log.error("reload failed, trying again at the next round", error=problem)  # noqa: TRY400
                failure = problem
                state.last_reload_error = problem
                self.metrics.reloaded(time.time(), success=False)

    async def _settled(
        self, loaded: inputs.Inputs, current: tuple[tuple[str, int, int], ...]
    ) -> tuple[tuple[str, int, int], ...]:
        """Wait until the files have stopped changing for ``SETTLE``; their state then.

        A file caught half-written can still be valid TOML: taken as an edit, it would raise
        SEQUENCE and send change notices twice, once for the half and once for the whole.
        """
        for _ in range(SETTLE_AT_MOST):
            await asyncio.sleep(SETTLE.total_seconds())
            again = await asyncio.to_thread(
                files_state, loaded.config_file, loaded.settings.calendars_dir
            )
            if again == current:
                break
            current = again
        return current

    def _same_state_dir(self, fresh: inputs.Inputs) -> None:
        """Refuse new settings that move the state folder: the ledger and lock cannot follow.

        Half applied, the feed cache would move while the ledger stays; a restart moves all.
        """
        moved = Path(os.path.normpath(fresh.settings.state_dir))
        if moved != self.lock.path.parent:
            message = f"'{moved}' differs from '{self.lock.path.parent}': restart to move it"
            problem = Problem(str(fresh.config_file), "state_dir", message)
            raise SettingsError([problem])

    async def _reload(self, ledger: Ledger, state: web.State) -> inputs.Inputs | None:
        """Read settings and calendars again; the new inputs, or None if they are invalid.

        Everything that can refuse the new files runs before anything is swapped in, so that
        a reload is applied whole or not at all.
        """
        try:
            fresh = await asyncio.to_thread(self._load)
            self._same_state_dir(fresh)
        except InvalidInputError as exc:
            for problem in exc.problems:
                log.warning("reload failed", problem=str(problem))
            state.last_reload_error = "; ".join(str(p) for p in exc.problems)
            self.metrics.reloaded(time.time(), success=False)
            return None
        plan = await asyncio.to_thread(reminders.plan_of, fresh, self.reminders.known)
        settings = fresh.settings
        deferred = await asyncio.to_thread(self._deferred, fresh, ledger)
        last = self._published
        built = await asyncio.to_thread(self._publish, fresh, ledger, deferred)
        await asyncio.to_thread(self._applied, fresh)
        logs.configure(settings.log.level, settings.log.format)
        state.publication = built
        state.base_url = settings.server.base_url
        state.max_age = settings.feeds.max_age
        state.gzip = settings.feeds.gzip
        state.last_reload = now()
        state.last_reload_error = None
        self.metrics.reloaded(time.time(), success=True)
        log.info("reloaded", calendars=len(fresh.calendars), events=built.event_count)
        await self.sender.call(self.reminders.replan(fresh, built, plan, deferred=deferred))
        self._unsaved = (built, settings.state_dir, last)
        return fresh


@contextlib.contextmanager
def _unless_running(settings: Settings) -> Iterator[bool]:
    """Whether a command may upgrade the ledger: only while no daemon holds the state folder.

    A daemon of an older eventwatch misreads a database upgraded under it (a notice sent as a
    reminder): a command run between installing and restarting must leave it as it is.
    The lock, when taken, is held for the block: while the ledger is opened (and upgraded).
    A ledger on PostgreSQL is never upgraded by a command: daemons on other hosts use it.
    """
    if settings.database.postgres:
        yield False
        return
    try:
        lock = StateLock(settings.state_dir)
    except (OperationError, StateError):
        yield False  # held by a daemon, or a folder this user may only read
        return
    try:
        yield True
    finally:
        lock.close()


def statuses(settings: Settings) -> dict[str, str]:
    """Each reminder's status in the ledger the settings name, as ``plan`` shows them."""
    state_dir = settings.state_dir
    if not settings.database.postgres and not (state_dir / DATABASE_FILE).is_file():
        return {}
    with _unless_running(settings) as upgrade:
        ledger = Ledger.of(settings.database, state_dir, upgrade=upgrade)
    try:
        return {key: str(row.status) for key, row in ledger.rows().items()}
    finally:
        ledger.close()


class _ReadOnly:
    """A ledger's revisions, read; revisions made from them are used but not stored."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def revisions(self, uids: Collection[str] | None = None) -> dict[str, Revision]:
        """What the ledger holds."""
        return self._ledger.revisions(uids)

    def save_revisions(self, changed: Iterable[Revision]) -> dict[str, Revision]:
        """Nothing is stored: the revisions as made."""
        return {r.uid: r for r in changed}


def export(loaded: inputs.Inputs, out: Path) -> list[Path]:
    """Write the feeds and index page of ``loaded`` into ``out``, as the server would serve them."""
    settings = loaded.settings
    make_state_folder(settings.state_dir)
    with _unless_running(settings) as alone:
        ledger = Ledger.of(settings.database, settings.state_dir, upgrade=alone)
    try:
        renderer = feeds.Renderer()
        warm(renderer, settings.state_dir)
        # A shared ledger is the running instances', and a state folder a daemon holds is
        # that daemon's: export, perhaps of a draft folder, reads their revisions and feed
        # cache and writes nothing there (or subscribers would see the draft's SEQUENCE).
        writes = alone and not ledger.shared
        built = publish(loaded, ledger if writes else _ReadOnly(ledger), renderer)
        if writes:
            keep(built, settings.state_dir)
        return static.export(built, out, settings.server.base_url, now())
    finally:
        ledger.close()


def migrate_ledger(settings: Settings, to_url: str) -> dict[str, int]:
    """Copy the SQLite ledger in ``state_dir`` into the empty PostgreSQL database ``to_url``.

    Only while no daemon holds the state folder; its lock is held throughout, so that none
    starts and sends meanwhile. The SQLite file is brought to the current schema first and
    otherwise left as it was, a backup. The password the settings give joins ``to_url`` as
    it joins ``[database] url``. Rows copied, by table.
    """
    state_dir = Path(os.path.normpath(settings.state_dir))
    if not (state_dir / DATABASE_FILE).is_file():
        msg = f"{state_dir / DATABASE_FILE}: no SQLite ledger to move (is state_dir right?)"
        raise StateError(msg)
    with contextlib.ExitStack() as stack:
        try:
            lock = StateLock(state_dir)
        except OperationError as exc:
            msg = f"{state_dir}: an eventwatch is running on this state folder: stop it first"
            raise OperationError(msg) from exc
        stack.callback(lock.close)
        source = Ledger.in_folder(state_dir)  # upgraded if older: the folder is ours
        stack.callback(source.close)
        database = settings.database.model_copy(update={"url": to_url})
        # Never upgraded by a command: daemons on other hosts may use it (see _unless_running).
        target = Ledger.of(database, state_dir, upgrade=False)
        stack.callback(target.close)
        return source.copy_into(target)


def run(config: Path | None, overrides: list[str] | None) -> int:
    """Run the daemon until it is told to stop; 0 after a clean stop."""
    logs.configure()
    httpserver.raise_file_limit()
    # A reload works in a thread beside the event loop; the loop gets the GIL back after at
    # most this long, not Python's default 5 ms, so requests keep flowing meanwhile.
    sys.setswitchinterval(SWITCH_INTERVAL)
    asyncio.run(Daemon(config, overrides).run())
    return 0
