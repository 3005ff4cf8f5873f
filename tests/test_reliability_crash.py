"""The daemon killed mid-batch, or down for hours: nothing lost, few repeats, late mail marked."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, NamedTuple

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from eventwatch import inputs, policy
from eventwatch.ledger import Ledger

from .helpers import (
    COMMAND,
    STARTED,
    Recorder,
    Running,
    free_port,
    message_id,
    numbered,
    wait_for,
    write_calendar,
    write_settings,
)

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.reliability

SEED = 20260707
"""Picks the kill points: the same seed, the same instants after each run's first DATA."""

KILLS = 20
RECIPIENTS = 500
HOLD = 0.02
"""Seconds the server holds each message in DATA before accepting it: a slow relay."""

WINDOW = 0.15
"""Each kill falls this many seconds at most after the run's first DATA: mid-batch, every time."""

CONNECTIONS = 4
"""``[smtp] max_connections``: messages in flight at once, so unrecorded at most per kill."""

MISSED = 50
DOWNTIME = timedelta(hours=10)
CATCH_UP = timedelta(hours=6)
"""``[reminders] catch_up``, the default: how late a missed reminder is still sent."""


class _Session(SMTP):
    """aiosmtpd's SMTP connection, keeping its controller's count of open connections."""

    counter: _Counting

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count it open."""
        super().connection_made(transport)
        self.counter.open += 1

    def connection_lost(self, error: Exception | None) -> None:
        """Count it closed; aiosmtpd has cancelled its handler, so nothing more arrives on it."""
        super().connection_lost(error)
        self.counter.open -= 1


class _Counting(Controller):
    """An aiosmtpd server on a free loopback port that knows how many connections are open."""

    def __init__(self, recorder: Recorder) -> None:
        """Start it, handing what arrives to ``recorder``."""
        self.open = 0
        self.port = free_port()
        super().__init__(recorder, hostname="127.0.0.1", port=self.port)
        self.start()

    def factory(self) -> SMTP:
        """A session that counts itself."""
        session = _Session(self.handler, **self.SMTP_kwargs)
        session.counter = self
        return session


class _Row(NamedTuple):
    """One ledger row, as read through a read-only connection."""

    key: str
    recipient: str
    due: int
    status: str
    message_id: str | None
    last_error: str | None


def _read(root: Path) -> tuple[list[str], dict[str, _Row]]:
    """SQLite's integrity check of the ledger under ``root``, and its rows by key.

    The connection is read-only: what a killed daemon left is looked at, never changed.
    """
    connection = sqlite3.connect(f"file:{root / 'state' / 'eventwatch.db'}?mode=ro", uri=True)
    try:
        check = [str(found) for (found,) in connection.execute("PRAGMA integrity_check")]
        rows = [
            _Row(*found)
            for found in connection.execute(
                "SELECT key, recipient, due, status, message_id, last_error FROM reminders"
            )
        ]
    finally:
        connection.close()
    return check, {row.key: row for row in rows}


def _launch(root: Path, run: int) -> subprocess.Popen[str]:
    """Start ``eventwatch run`` on ``root``, its log in ``root/run-N.log``; do not wait for it.

    Not ``Running``: the daemon serves HTTP only once the batch due at start is sent.
    """
    with (root / f"run-{run}.log").open("w") as log:
        process = subprocess.Popen(
            [str(COMMAND), "--config", str(root / "config" / "eventwatch.toml"),
             "--set", f"server.port={free_port()}", "run"],
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )  # fmt: skip
    STARTED.append(process)
    return process


def _until(holds: Callable[[], bool], timeout: float, what: str, every: float = 0.01) -> None:
    """Poll ``holds()`` every ``every`` seconds; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        time.sleep(every)


def _sent(root: Path) -> int:
    """How many reminders the ledger under ``root`` holds as sent, read without writing."""
    connection = sqlite3.connect(f"file:{root / 'state' / 'eventwatch.db'}?mode=ro", uri=True)
    try:
        (count,) = connection.execute("SELECT count(*) FROM reminders WHERE status = 'sent'")
    finally:
        connection.close()
    return int(count[0])


def _kill_mid_batch(
    root: Path, server: _Counting, recorder: Recorder, run: int, delay: float
) -> list[str]:
    """Start the daemon, SIGKILL it ``delay`` s after its first DATA; who the server accepted.

    Once the server has seen every connection close, nothing more of the run can arrive:
    aiosmtpd cancels a transaction whose client is gone, held DATA included.
    """
    entered, accepted = len(recorder.stalled), len(recorder.received)
    process = _launch(root, run)
    _until(lambda: len(recorder.stalled) > entered or process.poll() is not None, 30, "DATA begins")
    assert process.poll() is None, (root / f"run-{run}.log").read_text()
    time.sleep(delay)  # the random kill point, not a wait for anything
    process.kill()
    process.wait()
    _until(lambda: server.open == 0, 10, "the server has seen every connection close")
    return [envelope.rcpt_tos[0] for envelope in recorder.received[accepted:]]


def test_sigkill_at_random_points_mid_batch_loses_nothing_and_repeats_only_unrecorded_sends(
    tmp_path: Path,
) -> None:
    """Killed 20 times mid-batch, the daemon sends all 500; only sends not yet recorded repeat."""
    recorder = Recorder()
    recorder.stalls = [HOLD] * (RECIPIENTS * 4)
    server = _Counting(recorder)
    rng = random.Random(SEED)  # noqa: S311 - repeatable kill points, not a secret
    addresses = [f"r{n:03d}@example.org" for n in range(RECIPIENTS)]
    copies: Counter[str] = Counter()
    # Copies the server accepted that the ledger did not hold as sent when the daemon died.
    unrecorded: Counter[str] = Counter()
    per_kill: list[int] = []
    began = time.monotonic()
    try:
        write_settings(tmp_path, server.port, timeout=5, max_connections=CONNECTIONS)
        write_calendar(tmp_path, numbered([datetime.now(UTC) + timedelta(seconds=3)], 2), addresses)
        for run in range(KILLS):
            arrived = _kill_mid_batch(tmp_path, server, recorder, run, rng.uniform(0, WINDOW))
            check, rows = _read(tmp_path)
            assert check == ["ok"], (run, check)
            assert {row.status for row in rows.values()} <= {"pending", "sending", "sent"}
            assert len(arrived) == len(set(arrived)), f"a repeat within run {run}"
            copies.update(arrived)
            status = {row.recipient: row.status for row in rows.values()}
            assert all(copies[r] for r, found in status.items() if found == "sent"), run
            missed = [address for address in arrived if status[address] != "sent"]
            assert len(missed) <= CONNECTIONS, (run, missed)
            unrecorded.update(missed)
            per_kill.append(len(missed))
        before_last = len(copies)
        process = _launch(tmp_path, KILLS)
        _until(lambda: _sent(tmp_path) == RECIPIENTS, 60, "every reminder is sent", every=0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        _until(lambda: server.open == 0, 10, "the daemon has closed its connections")
        copies.update(envelope.rcpt_tos[0] for envelope in recorder.received[copies.total() :])
    finally:
        server.stop()
    check, rows = _read(tmp_path)
    repeats = copies.total() - RECIPIENTS
    print(  # noqa: T201 - the figure the scenario exists to report
        f"\n{KILLS} SIGKILLs mid-batch: {repeats} repeats of {RECIPIENTS} reminders "
        f"(accepted, not yet recorded, at each kill: {per_kill}); {before_last} sent before "
        f"the last start; {time.monotonic() - began:.1f} s"
    )
    assert check == ["ok"]
    assert sorted(row.status for row in rows.values()) == ["sent"] * RECIPIENTS
    assert set(copies) == set(addresses)
    assert copies == Counter({address: 1 + unrecorded[address] for address in addresses})
    assert repeats <= KILLS * CONNECTIONS
    ids: dict[str, set[bytes]] = {row.recipient: set() for row in rows.values()}
    for envelope in recorder.received:
        ids[envelope.rcpt_tos[0]].add(message_id(envelope.content))
    assert {r.recipient: {(r.message_id or "").encode()} for r in rows.values()} == ids
    assert len({row.message_id for row in rows.values()}) == RECIPIENTS
    assert "Traceback" not in (tmp_path / f"run-{KILLS}.log").read_text()


def test_reminders_due_while_stopped_are_sent_late_or_skipped_and_none_silently(
    tmp_path: Path,
) -> None:
    """After 10 h down, reminders missed by under 6 h go out late in 60 s; older are skipped."""
    recorder = Recorder()
    server = _Counting(recorder)
    now = datetime.now(UTC).replace(microsecond=0)
    step = (DOWNTIME - timedelta(minutes=1)) / (MISSED - 1)
    dues = [(now - DOWNTIME + n * step).replace(microsecond=0) for n in range(MISSED)]
    assert all(abs(now - due - CATCH_UP) > timedelta(minutes=2) for due in dues)  # none borderline
    recent = {int(due.timestamp()) for due in dues if now - due < CATCH_UP}
    try:
        write_settings(tmp_path, server.port, timeout=5, max_connections=CONNECTIONS)
        write_calendar(tmp_path, numbered(dues, 2))
        # What the daemon planned before it stopped, ten hours ago: all 50 pending.
        loaded = inputs.load(tmp_path / "config" / "eventwatch.toml")
        ledger = Ledger.in_folder(loaded.settings.state_dir)
        try:
            plan = policy.reminders(loaded.calendars, loaded.settings.reminders)
            ledger.reconcile(policy.follow(plan), now - DOWNTIME - timedelta(minutes=1))
        finally:
            ledger.close()
        assert [row.status for row in _read(tmp_path)[1].values()] == ["pending"] * MISSED
        started = time.time()
        running = Running(tmp_path)
        wait_for(lambda: len(recorder.received) >= len(recent), timeout=60)
        wait_for(lambda: "pending" not in {r.status for r in _read(tmp_path)[1].values()})
        code, log = running.stop()
        _until(lambda: server.open == 0, 10, "the daemon has closed its connections")
    finally:
        server.stop()
    took = max(recorder.arrived) - started
    print(  # noqa: T201 - the figure the scenario exists to report
        f"\ncatch-up after {DOWNTIME} down: {len(recent)} late reminders sent, the last "
        f"{took:.2f} s after start; {MISSED - len(recent)} skipped"
    )
    assert code == 0, log
    check, rows = _read(tmp_path)
    assert check == ["ok"]
    sent = {row.due: row for row in rows.values() if row.status == "sent"}
    skipped = [row for row in rows.values() if row.status == "skipped"]
    assert (set(sent), len(skipped)) == (recent, MISSED - len(recent))
    assert {row.due for row in skipped}.isdisjoint(recent)
    for row in skipped:
        assert f"before it could be sent (catch_up is {CATCH_UP})" in (row.last_error or "")
        assert any(
            "reminder skipped" in line and row.key in line and "catch_up is" in line
            for line in log.splitlines()
        )
    assert took < 60
    assert sorted(message_id(e.content).decode() for e in recorder.received) == sorted(
        row.message_id or "" for row in sent.values()
    )
    assert all(b"\r\nSubject: Late reminder: Event " in e.content for e in recorder.received)
