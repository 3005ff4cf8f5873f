"""The composition root: one event loop serving feeds, watching the calendar files."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import uvicorn

from eventwatch import export as static
from eventwatch import feedcache, feeds, inputs, logs, publication, reminding, web
from eventwatch.errors import InvalidInputError, OperationError
from eventwatch.ledger import Ledger

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


log = logs.get("daemon")


def now() -> datetime:
    """The current instant; the daemon is the one place that reads the clock."""
    return datetime.now(UTC)


def publish(
    loaded: inputs.Inputs, ledger: Ledger, renderer: feeds.Renderer
) -> publication.Publication:
    """Render every feed of ``loaded`` and keep the encoded events for the next start."""
    settings = loaded.settings
    built = publication.build(
        loaded.calendars, publication.Options.of(settings), ledger, renderer, now()
    )
    body = built.rendered[publication.ALL].body
    try:
        feedcache.save(settings.state_dir, body, renderer.placements(body))
    except OSError as exc:
        log.warning("feed cache not saved error=%r", str(exc))
    return built


def warm(renderer: feeds.Renderer, state_dir: Path) -> None:
    """Seed ``renderer`` with the events an earlier run encoded, if their cache is usable."""
    found = feedcache.load(state_dir)
    if found is None:
        log.info("feed cache none usable; rendering cold")
        return
    body, placements = found
    renderer.seed(body, placements)
    log.info("feed cache loaded events=%d", len(placements))


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


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signals to the daemon."""
        yield


class Daemon:
    """One run of ``eventwatch run``."""

    def __init__(self, config: Path | None, overrides: list[str] | None) -> None:
        """Remember where the settings come from; nothing is read until ``run``."""
        self.config = config
        self.overrides = overrides
        self.renderer = feeds.Renderer()
        self.server: _Server | None = None
        self.reminders: reminding.Reminders
        self.stopping = asyncio.Event()

    def _load(self) -> inputs.Inputs:
        return inputs.load(self.config, self.overrides)

    async def run(self) -> None:
        """Load everything, serve until SIGTERM or SIGINT, then stop cleanly.

        Invalid settings or calendars raise ``InvalidInputError`` before anything is served.
        """
        loaded = await asyncio.to_thread(self._load)
        settings = loaded.settings
        log.info(
            "loaded calendars=%d events=%d calendars_dir=%s",
            len(loaded.calendars),
            sum(len(c.events) for c in loaded.calendars),
            settings.calendars_dir,
        )
        ledger = await asyncio.to_thread(Ledger.in_folder, settings.state_dir)
        try:
            lock = reminding.lock_state(settings.state_dir)
        except OperationError:
            ledger.close()
            raise
        await asyncio.to_thread(warm, self.renderer, settings.state_dir)
        try:
            await self._serve(loaded, ledger)
        finally:
            ledger.close()
            lock.close()

    async def _serve(self, loaded: inputs.Inputs, ledger: Ledger) -> None:
        settings = loaded.settings
        built = await asyncio.to_thread(publish, loaded, ledger, self.renderer)
        state = web.State(
            publication=built,
            base_url=settings.server.base_url,
            max_age=settings.feeds.max_age,
            gzip=settings.feeds.gzip,
            last_reload=now(),
        )
        config = uvicorn.Config(
            web.create_app(state, now),
            host=settings.server.host,
            port=settings.server.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
        )
        self.server = _Server(config)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop, signum)
        self.reminders = reminding.Reminders(ledger, now)
        await self.reminders.start(loaded, built)
        watcher = asyncio.create_task(self._watch(loaded, ledger, state))
        try:
            await self.server.serve()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self.reminders.stop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
        log.info("stopped")

    def _stop(self, signum: int) -> None:
        """Signal handler: only sets state; the server's own loop does the stopping."""
        log.info("stopping signal=%s", signal.Signals(signum).name)
        self.stopping.set()
        if self.server is not None:
            self.server.should_exit = True

    async def _watch(self, loaded: inputs.Inputs, ledger: Ledger, state: web.State) -> None:
        """Re-read settings and calendars when their files change; keep the last good ones."""
        config_path = loaded.config_file
        seen = await asyncio.to_thread(files_state, config_path, loaded.settings.calendars_dir)
        while True:
            await asyncio.sleep(loaded.settings.feeds.reload_every.total_seconds())
            current = await asyncio.to_thread(
                files_state,
                config_path,
                loaded.settings.calendars_dir,
            )
            if current == seen:
                continue
            seen = current
            try:
                fresh = await asyncio.to_thread(self._load)
            except InvalidInputError as exc:
                for problem in exc.problems:
                    log.warning("reload failed problem=%r", str(problem))
                state.last_reload_error = "; ".join(str(p) for p in exc.problems)
                continue
            built = await asyncio.to_thread(publish, fresh, ledger, self.renderer)
            loaded, config_path = fresh, fresh.config_file
            state.publication = built
            state.max_age = fresh.settings.feeds.max_age
            state.gzip = fresh.settings.feeds.gzip
            state.last_reload = now()
            state.last_reload_error = None
            log.info("reloaded calendars=%d events=%d", len(fresh.calendars), built.event_count)
            await self.reminders.replan(fresh, built)


def export(loaded: inputs.Inputs, out: Path) -> list[Path]:
    """Write the feeds and index page of ``loaded`` into ``out``, as the server would serve them."""
    settings = loaded.settings
    ledger = Ledger.in_folder(settings.state_dir)
    try:
        renderer = feeds.Renderer()
        warm(renderer, settings.state_dir)
        built = publish(loaded, ledger, renderer)
        return static.export(built, out, settings.server.base_url, now())
    finally:
        ledger.close()


def run(config: Path | None, overrides: list[str] | None) -> int:
    """Run the daemon until it is told to stop; 0 after a clean stop."""
    logs.configure()
    asyncio.run(Daemon(config, overrides).run())
    return 0
