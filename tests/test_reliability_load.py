"""The real daemon under load, and with its event loop frozen: it serves, sends on time, holds.

The HTTP load runs in a process of its own (spawned), so that it shares an interpreter neither
with the daemon nor with the SMTP server that times the reminders' arrival: on this 2-core
machine the three compete for the cores as they would on a small host, and a late arrival is
the daemon's lateness, not the test's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import re
import signal
import statistics
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from .helpers import (
    COMMAND,
    Listener,
    Recorder,
    Running,
    Server,
    free_port,
    numbered,
    statuses,
    wait_for,
    write_calendar,
    write_settings,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from multiprocessing.connection import Connection

pytestmark = pytest.mark.reliability

FEED = "/feeds/all.ics"

CLIENTS = 200
"""Subscribers polling at once, each on its own kept-alive connection, with no pause."""

SLOW_CLIENTS = 150
"""Clients that trickle a request's head one byte at a time (slowloris)."""

SLOW_EVERY = 3.0
"""Seconds between two bytes of a slow client."""

LOAD_SECONDS = 30.0

EVENTS = 20
RECIPIENTS = 100
"""EVENTS x RECIPIENTS = 2,000 reminders: one event's 100 falling due each second."""

FIRST_DUE = timedelta(seconds=9)
"""From just before the daemon starts: its start (1-2 s) and a few seconds of load come first."""

WARM_UP = 5
"""Seconds of load before the daemon's memory counts as settled."""

LATE_AT_MOST = 5.0

FREEZE = 5.0
"""Seconds the daemon is stopped: from outside, a 5 s blocking call on its event loop."""

WATCHDOG_USEC = 2_000_000
"""systemd's WatchdogSec=2: the daemon pings every second."""


class Daemon(Running):
    """``eventwatch run`` on a site, its log in a file, ``WATCHDOG_PID`` its own pid.

    Every sent reminder is a log line: 2,000 of them fill a pipe's 64 KiB, and the daemon's
    next write to stderr, on its event loop, would then wait for the test to read. A shell sets
    ``WATCHDOG_PID=$$`` and ``exec``s the daemon, which so keeps the pid, as under systemd.
    """

    def __init__(self, root: Path, env: dict[str, str] | None = None, port: int = 0) -> None:
        """Start it, with ``env`` added to the environment, and wait until it answers."""
        super().__init__(root, env, port, log=root / "daemon.log")

    def command(self, root: Path) -> list[str]:
        """The command line: through a shell that sets ``WATCHDOG_PID``; the files' own settings."""
        return [
            "/bin/sh",
            "-c",
            'WATCHDOG_PID=$$ exec "$0" "$@"',
            str(COMMAND),
            "--config",
            str(root / "config" / "eventwatch.toml"),
            "--set",
            f"server.port={self.port}",
            "run",
        ]

    def rss(self) -> int:
        """The daemon's resident memory now, in KiB (VmRSS)."""
        status = Path(f"/proc/{self.process.pid}/status").read_text(encoding="ascii")
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        pytest.fail(f"no VmRSS for pid {self.process.pid}")

    def cpu(self) -> float:
        """Seconds of CPU the daemon has used so far (user and system, all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, signum: signal.Signals = signal.SIGTERM, timeout: float = 20) -> tuple[int, str]:
        """Signal it, waking it first if stopped; the exit code and the log once it has stopped."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a stopped process would not act on TERM
        return super().stop(signum, timeout)


def _site(root: Path, smtp_port: int, dues: list[datetime], recipients: int) -> None:
    """SMTP to ``smtp_port``, its default settings; one event per instant, reminded P1D before."""
    write_settings(root, smtp_port)
    write_calendar(root, numbered(dues), [f"r{n}@example.org" for n in range(recipients)])


def _dues(origin: datetime, first: timedelta, count: int) -> list[datetime]:
    """``count`` whole-second instants a second apart, the first ``first`` after ``origin``."""
    start = origin.replace(microsecond=0) + first
    return [start + timedelta(seconds=n) for n in range(count)]


_EVENT = re.compile(rb"Subject: (?:Late reminder|Reminder): Event (\d+) in")


def _arrivals(recorder: Recorder) -> list[tuple[int, str, float]]:
    """(event number, recipient, arrival time) of each message the SMTP server accepted."""
    found = []
    for envelope, arrived in zip(recorder.received, recorder.arrived, strict=True):
        match = _EVENT.search(envelope.content)
        assert match is not None, envelope.content[:500]
        found += [(int(match.group(1)), to, arrived) for to in envelope.rcpt_tos]
    return found


# -- the load, in a process of its own ---------------------------------------------------------


@dataclass
class Tally:
    """What the clients of the load saw."""

    started: float = 0.0
    """Wall-clock time the load began."""
    ended: float = 0.0
    cpu: float = 0.0
    """Seconds of CPU the load itself used."""
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    """(request kind, status) -> how many."""
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    slow_held: list[float] = field(default_factory=list)
    """Seconds each slow connection stayed open before the daemon closed it."""
    slow_errors: list[str] = field(default_factory=list)

    @property
    def served(self) -> int:
        """Requests answered."""
        return sum(self.statuses.values())

    @property
    def seconds(self) -> float:
        """How long the load ran."""
        return self.ended - self.started


async def _response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response (with Content-Length, or none for a 304); its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding":
            msg = f"unexpected Transfer-Encoding: {value.strip()}"
            raise ValueError(msg)
    await reader.readexactly(length)
    return status


async def _subscriber(port: int, etag: str, until: float, tally: Tally, number: int) -> None:
    """Revalidate and fetch the feed in turn, on one kept-alive connection, until ``until``."""
    fetch = f"GET {FEED} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    revalidate = f"GET {FEED} HTTP/1.1\r\nHost: 127.0.0.1\r\nIf-None-Match: {etag}\r\n\r\n"
    requests = [("revalidate", revalidate.encode()), ("fetch", fetch.encode())]
    turn = number  # half the clients begin with each kind
    while time.monotonic() < until:
        kind = "connect"
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            tally.errors.append(f"{kind}: {exc!r}")
            continue
        try:
            while time.monotonic() < until:
                kind, request = requests[turn % 2]
                turn += 1
                began = time.perf_counter()
                writer.write(request)
                async with asyncio.timeout(10):
                    status = await _response(reader)
                tally.latencies[kind].append(time.perf_counter() - began)
                tally.statuses[kind, status] += 1
        except (OSError, EOFError, TimeoutError, ValueError) as exc:
            tally.errors.append(f"{kind}: {exc!r}")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _slow(port: int, until: float, tally: Tally, delay: float) -> None:
    """Trickle a request head one byte every ``SLOW_EVERY`` s; connect again once closed."""
    await asyncio.sleep(delay)
    head = f"GET {FEED} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\n\r\n".encode()
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            tally.slow_errors.append(f"connect: {exc!r}")
            continue
        opened = time.monotonic()
        try:
            for byte in head[:-1]:  # never the last: the head stays incomplete
                writer.write(bytes([byte]))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SLOW_EVERY):
                        await reader.read(1)  # only the daemon closing ends this early
                    break
                if time.monotonic() >= until:
                    break
            else:
                tally.slow_errors.append("the whole head went out and was never closed")
        except OSError:
            pass  # a reset is a close too
        else:
            if time.monotonic() < until:
                tally.slow_held.append(time.monotonic() - opened)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _load(port: int, seconds: float, report: Connection) -> Tally:
    """Wait until the daemon answers, then run the subscribers and the slow clients."""
    tally = Tally()
    etag = None
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Accept-Encoding": "identity"}
    ) as client:
        while etag is None:
            with contextlib.suppress(httpx.HTTPError):
                etag = (await client.get(FEED)).headers["etag"]  # the uncompressed body's
            await asyncio.sleep(0.02)
    tally.started = time.time()
    report.send(tally.started)
    cpu = time.process_time()
    until = time.monotonic() + seconds
    async with asyncio.TaskGroup() as group:
        for n in range(CLIENTS):
            group.create_task(_subscriber(port, etag, until, tally, n))
        for n in range(SLOW_CLIENTS):
            group.create_task(_slow(port, until, tally, n * SLOW_EVERY / SLOW_CLIENTS))
    tally.ended = time.time()
    tally.cpu = time.process_time() - cpu
    return tally


def _generate(port: int, seconds: float, report: Connection) -> None:
    """The spawned process: run the load and send its tally back."""
    report.send(asyncio.run(_load(port, seconds, report)))


class Sampler:
    """The daemon's VmRSS once a second, from ``begin`` to ``end``, in a thread."""

    def __init__(self, read: Callable[[], int]) -> None:
        """Sample with ``read``."""
        self.read = read
        self.samples: list[int] = []
        self._begun = threading.Event()
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self._begun.wait()
        next_at = time.monotonic()
        while not self._ended.is_set():
            self.samples.append(self.read())
            next_at += 1
            self._ended.wait(max(0.0, next_at - time.monotonic()))

    def begin(self) -> None:
        """Start sampling now."""
        self._begun.set()

    def end(self) -> None:
        """Stop sampling."""
        self._begun.set()
        self._ended.set()
        self._thread.join()


def _ms(values: list[float], percent: int) -> float:
    """The ``percent``-th percentile of ``values`` (seconds), in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] * 1000


def test_under_load_every_client_is_served_and_reminders_go_on_time(tmp_path: Path) -> None:
    """200 polling and 150 slow clients: no error, 2,000 reminders within 5 s, memory flat.

    Flat: the daemon's RSS over the last 10 s of the load is within 20% of its first 10 s
    after warming up.
    """
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    port = free_port()
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    load = context.Process(target=_generate, args=(port, LOAD_SECONDS, theirs), daemon=True)
    load.start()  # it imports while the daemon starts, then waits for the port to answer
    try:
        dues = _dues(datetime.now(UTC), FIRST_DUE, EVENTS)
        _site(tmp_path, server.port, dues, RECIPIENTS)
        began = time.monotonic()
        daemon = Daemon(tmp_path, port=port)
        ready = time.monotonic() - began
        sampler = Sampler(daemon.rss)
        assert ours.poll(30), "the load did not start"
        started = ours.recv()
        sampler.begin()
        cpu = daemon.cpu()
        assert ours.poll(LOAD_SECONDS + 30), "the load did not end"
        tally: Tally = ours.recv()
        cpu = daemon.cpu() - cpu
        sampler.end()
        load.join(10)
        wait_for(lambda: len(recorder.received) >= EVENTS * RECIPIENTS, timeout=60)
        code, log = daemon.stop()  # what it sends from now on would be a repeat: none can come
    finally:
        server.stop()
        if load.is_alive():
            load.kill()
    # The reminders all fell due while the load ran, a few seconds into it.
    assert started + 2 < dues[0].timestamp(), (started, dues[0])
    assert dues[-1].timestamp() + 2 < tally.ended, (tally.ended, dues[-1])

    arrivals = _arrivals(recorder)
    lateness = [at - dues[n].timestamp() for n, _, at in arrivals]
    worst = [max(late for (m, _, _), late in zip(arrivals, lateness, strict=True) if m == n)
             for n in range(EVENTS)]  # fmt: skip
    rss = sampler.samples
    first, last = rss[WARM_UP : WARM_UP + 10], rss[-10:]
    print(  # noqa: T201 - the figures for the docs and the closing note
        f"\nload: daemon ready in {ready:.1f} s; {CLIENTS} clients and {SLOW_CLIENTS} slow ones "
        f"for {tally.seconds:.1f} s: {tally.served} requests ({tally.served / tally.seconds:.0f}/s)"
        f" {dict(tally.statuses)}, {len(tally.errors)} errors {tally.errors[:3]}"
        f"\nlatency: 304 p50 {_ms(tally.latencies['revalidate'], 50):.1f} ms, "
        f"p99 {_ms(tally.latencies['revalidate'], 99):.1f} ms; "
        f"200 p50 {_ms(tally.latencies['fetch'], 50):.1f} ms, "
        f"p99 {_ms(tally.latencies['fetch'], 99):.1f} ms; all p50 "
        f"{_ms(tally.latencies['revalidate'] + tally.latencies['fetch'], 50):.1f} ms, p99 "
        f"{_ms(tally.latencies['revalidate'] + tally.latencies['fetch'], 99):.1f} ms"
        f"\nCPU during the load: daemon {cpu:.1f} s, load generator {tally.cpu:.1f} s"
        f"\nslow connections closed after {min(tally.slow_held, default=0):.1f}-"
        f"{max(tally.slow_held, default=0):.1f} s ({len(tally.slow_held)} connections)"
        f"\nreminders: {len(arrivals)} sent, lateness p50 {statistics.median(lateness):.2f} s, "
        f"max {max(lateness):.2f} s; worst by due second {[round(w, 1) for w in worst]}"
        f"\nRSS: start {rss[0] / 1024:.1f} MiB, first 10 s after warm-up "
        f"{statistics.mean(first) / 1024:.1f} MiB, last 10 s {statistics.mean(last) / 1024:.1f} "
        f"MiB, end {rss[-1] / 1024:.1f} MiB, max {max(rss) / 1024:.1f} MiB ({len(rss)} samples)"
    )
    assert code == 0, log[-2000:]
    assert "Traceback" not in log
    assert tally.errors == []
    assert set(tally.statuses) == {("revalidate", 304), ("fetch", 200)}
    assert tally.slow_errors == []
    assert len(rss) >= WARM_UP + 20
    assert statistics.mean(last) <= 1.2 * statistics.mean(first)
    assert len(arrivals) == EVENTS * RECIPIENTS
    assert len({(n, to) for n, to, _ in arrivals}) == EVENTS * RECIPIENTS  # each once
    assert max(lateness) <= LATE_AT_MOST


# -- a blocked event loop ----------------------------------------------------------------------


def _pings(listener: Listener) -> list[float]:
    """When each WATCHDOG=1 arrived (monotonic)."""
    return [at for at, fields in list(listener.received) if fields.get("WATCHDOG") == "1"]


def _until(predicate: Callable[[], bool], timeout: float) -> None:
    """Poll ``predicate`` closely (10 ms) until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.01)


def test_a_frozen_loop_stops_the_watchdog_and_loses_no_reminder(tmp_path: Path) -> None:
    """A 5 s freeze with reminders due in it: pings stop, then resume; each is sent once after."""
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    listener = Listener(tmp_path)
    env = {"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    origin = datetime.now(UTC).replace(microsecond=0)
    dues = _dues(origin, timedelta(seconds=9), 3)  # frozen from 7-8 s to 12-13 s
    try:
        _site(tmp_path, server.port, dues, recipients=2)
        daemon = Daemon(tmp_path, env)
        wait_for(lambda: len(_pings(listener)) >= 2)  # WATCHDOG_PID was its own: it pings
        _until(lambda: time.time() >= origin.timestamp() + 6.6, timeout=15)
        ping = len(_pings(listener))
        _until(lambda: len(_pings(listener)) > ping, timeout=5)
        time.sleep(0.4)  # freeze between two pings, not on one
        assert recorder.received == []
        daemon.process.send_signal(signal.SIGSTOP)
        stopped, stopped_at = time.monotonic(), time.time()
        time.sleep(FREEZE)  # the fault itself: how long the loop is blocked
        daemon.process.send_signal(signal.SIGCONT)
        resumed, resumed_at = time.monotonic(), time.time()
        wait_for(lambda: len(recorder.received) >= 3, timeout=15)
        _until(lambda: len([p for p in _pings(listener) if p > resumed]) >= 3, timeout=10)
        code, log = daemon.stop()  # nothing can be sent (again) after this
    finally:
        listener.close()
        server.stop()
    assert stopped_at < dues[0].timestamp()  # every reminder fell due during the freeze
    assert dues[-1].timestamp() < resumed_at
    pings = _pings(listener)
    gap, after = max(
        (b - a, b) for a, b in itertools.pairwise(pings) if a < resumed and b > stopped
    )
    arrivals = _arrivals(recorder)
    print(  # noqa: T201 - the figures for the docs and the closing note
        f"\nfreeze: {resumed - stopped:.2f} s; watchdog gap {gap:.2f} s, first ping "
        f"{after - resumed:.3f} s after SIGCONT; reminders sent "
        f"{min(at for *_, at in arrivals) - resumed_at:.3f}-"
        f"{max(at for *_, at in arrivals) - resumed_at:.3f} s after SIGCONT"
    )
    assert code == 0, log[-2000:]
    assert gap >= FREEZE
    later = [b - a for a, b in itertools.pairwise(pings) if a >= after]
    assert len(later) >= 2
    assert max(later) < 1.5  # back to one a second
    assert len(arrivals) == 6
    assert len({(n, to) for n, to, _ in arrivals}) == 6  # each once
    assert all(at >= resumed_at for *_, at in arrivals)
    assert statuses(tmp_path) == ["sent"] * 6
