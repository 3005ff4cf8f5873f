"""A full disk under the running daemon: feeds served, nothing marked sent that was not."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import httpx
import pytest

from .helpers import Running, numbered, wait_for, write_calendar, write_settings

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.reliability


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs for the state folder: a disk that can really be filled."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; CI runs as root")
    mount = tmp_path / "state"
    mount.mkdir()
    tools = {name: shutil.which(name) or name for name in ("mount", "umount")}
    subprocess.run(
        [tools["mount"], "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True
    )
    yield mount
    subprocess.run([tools["umount"], "-l", str(mount)], check=False)


def _fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; the filler file."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def _statuses(db: Path) -> list[str]:
    """Every reminder's status, read without writing."""
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return sorted(s for (s,) in connection.execute("SELECT status FROM reminders"))
    finally:
        connection.close()


def test_a_full_disk_stops_nothing_but_sending_and_sending_resumes(
    tmp_path: Path, small_disk: Path
) -> None:
    """A full disk stops only the sending, says so, and sending resumes once space returns."""
    now = datetime.now(UTC).replace(microsecond=0)
    write_settings(tmp_path)
    write_calendar(tmp_path, numbered((now + timedelta(seconds=6), now + timedelta(seconds=8))))
    running = Running(tmp_path)
    outbox = small_disk / "outbox"
    filler = _fill(small_disk)
    time.sleep(10)  # both reminders fall due while the disk is full
    assert running.get("/feeds/all.ics").status_code == 200
    health = running.get("/healthz")
    assert health.status_code == 503
    assert "full" in health.json()["sending_error"] or "space" in health.json()["sending_error"]
    sent_while_full = len(list((outbox / "new").iterdir())) if (outbox / "new").is_dir() else 0
    assert sent_while_full == 0
    assert "sent" not in _statuses(small_disk / "eventwatch.db")
    filler.unlink()
    wait_for(lambda: _statuses(small_disk / "eventwatch.db") == ["sent", "sent"], timeout=90)
    assert httpx.get(f"{running.url}/healthz", timeout=5).status_code == 200
    code, log = running.stop()
    assert code == 0
    assert "Traceback" not in log
    assert len(list((outbox / "new").iterdir())) == 2
    connection = sqlite3.connect(small_disk / "eventwatch.db")
    assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    connection.close()
