"""A crowd of idle connections cannot take the files the daemon needs for its own work."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from .helpers import (
    COMMAND,
    STARTED,
    Recorder,
    Server,
    free_port,
    numbered,
    wait_for,
    write_calendar,
    write_settings,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.reliability


def test_idle_connections_beyond_the_open_files_limit_starve_nothing(tmp_path: Path) -> None:
    """600 idle connections against a limit of 400 files: reminders, reloads and the log hold."""
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    port = free_port()
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    config = write_settings(tmp_path, server.port)
    write_calendar(tmp_path, numbered([due]))
    prlimit = shutil.which("prlimit") or "prlimit"
    process = subprocess.Popen(
        [prlimit, "--nofile=400:400", str(COMMAND), "--config", str(config),
         "--set", f"server.port={port}", "run"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    STARTED.append(process)
    crowd: list[socket.socket] = []
    try:
        wait_for(lambda: _answers(port), timeout=20)
        began = time.monotonic()
        reloaded = False
        while time.monotonic() < began + 14:  # hold 600, opening again what the daemon closes
            crowd = [c for c in crowd if _open(c)]
            while len(crowd) < 600:
                crowd.append(socket.create_connection(("127.0.0.1", port)))
            if not reloaded and time.monotonic() > began + 4:
                process.send_signal(signal.SIGHUP)  # a reload must read its files meanwhile
                reloaded = True
            time.sleep(0.5)
        arrived = list(recorder.arrived)
    finally:
        for connection in crowd:
            connection.close()
        server.stop()
    process.send_signal(signal.SIGTERM)
    _, log = process.communicate(timeout=30)
    assert process.returncode == 0
    assert len(arrived) == 1, log[-3000:]
    assert arrived[0] - due.timestamp() < 2
    assert "Too many open files" not in log
    assert "Traceback" not in log
    assert "reload failed" not in log
    assert len(log.splitlines()) < 200


def _answers(port: int) -> bool:
    """Whether the daemon accepts a connection."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _open(connection: socket.socket) -> bool:
    """Whether the daemon still holds ``connection`` open (it closes those over its cap)."""
    connection.settimeout(0)
    try:
        closed = connection.recv(1) == b""
    except BlockingIOError:
        return True
    except OSError:
        closed = True
    if closed:
        connection.close()
    return not closed
