"""The wall clock jumping under the real daemon (libfaketime): no repeat, no loss, no spin."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .helpers import (
    LIBFAKETIME,
    Recorder,
    Running,
    Server,
    wait_for,
    write_calendar,
    write_settings,
)

pytestmark = pytest.mark.reliability


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / 100


def _statuses(root: Path) -> dict[str, str]:
    """Each event's reminder status, read without writing."""
    connection = sqlite3.connect(f"file:{root / 'state' / 'eventwatch.db'}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT event_uid, status FROM reminders").fetchall()
    finally:
        connection.close()
    return {uid.split("/")[1].split("@")[0]: status for uid, status in rows}


def test_a_clock_jumping_forward_a_day_then_back_an_hour(tmp_path: Path) -> None:
    """A day forward is downtime, an hour back repeats nothing, and the daemon never spins.

    Forward a day, a reminder within catch_up is sent marked late and an older one is skipped
    and logged, as after any downtime; back an hour, nothing is sent again or early.
    """
    assert LIBFAKETIME, "install Debian's faketime package (.ci/run does)"
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    now = datetime.now(UTC).replace(microsecond=0)
    dues = {
        "before": now + timedelta(seconds=4),  # sent on time, before any jump
        "skipped": now + timedelta(hours=12),  # 12 h overdue after the jump: beyond catch_up
        "late": now + timedelta(days=1, minutes=-30),  # 30 min overdue: sent, marked late
        "ahead": now + timedelta(days=1, minutes=30),  # still ahead after the jump back
    }
    write_settings(tmp_path, server.port)
    write_calendar(tmp_path, [(name, name, due) for name, due in dues.items()])
    env = {
        "LD_PRELOAD": str(LIBFAKETIME[0]),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    try:
        running = Running(tmp_path, env=env)
        pid = running.process.pid
        wait_for(lambda: len(recorder.received) == 1, timeout=20)
        cpu = _cpu_seconds(pid)
        time.sleep(5)
        steady_cpu = _cpu_seconds(pid) - cpu  # libfaketime reads its file at every clock read
        offset.write_text("+1d\n")
        wait_for(lambda: len(recorder.received) == 2, timeout=90)  # the sweep, within a minute
        offset.write_text("+23h\n")  # back an hour
        cpu = _cpu_seconds(pid)
        time.sleep(5)
        idle_cpu = _cpu_seconds(pid) - cpu
        statuses = _statuses(tmp_path)
        code, log = running.stop()
    finally:
        server.stop()
    assert code == 0, log
    subjects = [e.content.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0] for e in recorder.received]
    assert subjects == [
        b"Reminder: before in 1 day " + subjects[0].split(b"day ", 1)[1],
        b"Late reminder: late in 1 day " + subjects[1].split(b"day ", 1)[1],
    ]
    assert statuses == {"before": "sent", "skipped": "skipped", "late": "sent", "ahead": "pending"}
    assert "reminder skipped" in log
    assert idle_cpu < 2 * steady_cpu + 0.3, f"{idle_cpu} s of CPU in 5 s after the jump back"
