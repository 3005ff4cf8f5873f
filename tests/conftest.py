"""Shared fixtures: a clean environment, the shipped files, and throw-away config folders."""

from __future__ import annotations

import contextlib
import os
import shutil
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import uvicorn
from hypothesis import HealthCheck, settings

from eventwatch import cli

if TYPE_CHECKING:
    import subprocess

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = ROOT / "config" / "eventwatch.toml"
SHIPPED_CALENDARS = ROOT / "calendars"

MINIMAL_CALENDAR = """\
name = "Test calendar"
timezone = "Europe/Brussels"

[reminders]
offsets = ["P1D"]
recipients = [{ address = "ops@example.org" }]

[[events]]
id = "meeting"
title = "Meeting"
start = 2026-05-04T10:00:00
end = 2026-05-04T12:00:00
"""


# Property tests: no deadline (CI machines are shared and noisy); "ci" is fixed and repeatable,
# "deep" (HYPOTHESIS_PROFILE=deep) searches ten times as far when hunting for a new failure.
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", deadline=None, max_examples=1000, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

STARTED: list[subprocess.Popen[str]] = []
"""Every daemon process a test started, so that none outlives its test."""


@pytest.fixture(autouse=True)
def reap_daemons() -> Iterator[None]:
    """Kill a daemon a failed test left running: it would retry its SMTP port, later reused."""
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test starts with no EVENTWATCH_* variable, a fixed zone and its own folder."""
    for name in list(os.environ):
        if name.upper().startswith("EVENTWATCH_"):
            monkeypatch.delenv(name)
    # Nor any of systemd's, should the tests themselves run under a service manager.
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TZ", "UTC")
    monkeypatch.chdir(tmp_path)


@dataclass
class Site:
    """A config folder and a calendars folder under a test's own directory."""

    root: Path

    @property
    def config(self) -> Path:
        """The settings file."""
        return self.root / "config" / "eventwatch.toml"

    @property
    def calendars(self) -> Path:
        """The calendars folder the settings point at."""
        return self.root / "calendars"

    def write_config(self, text: str = "") -> Path:
        """Write the settings file; it always points at ../calendars and ../state."""
        self.config.parent.mkdir(parents=True, exist_ok=True)
        head = 'calendars_dir = "../calendars"\nstate_dir = "../state"\n'
        self.config.write_text(head + textwrap.dedent(text), encoding="utf-8")
        return self.config

    def write_calendar(self, name: str, text: str) -> Path:
        """Write one calendar file."""
        self.calendars.mkdir(parents=True, exist_ok=True)
        path = self.calendars / f"{name}.toml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path


@pytest.fixture
def site(tmp_path: Path) -> Site:
    """A valid site: settings plus one small calendar, ``test``."""
    made = Site(tmp_path)
    made.write_config()
    made.write_calendar("test", MINIMAL_CALENDAR)
    return made


@dataclass
class Outcome:
    """What one run of the command line did."""

    code: int
    out: str
    err: str


Runner = Callable[..., Outcome]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Runner:
    """Run ``eventwatch`` in-process and collect its exit code and output."""

    def invoke(*argv: str) -> Outcome:
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:  # argparse exits on usage errors and --help
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return invoke


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """Serve ``app`` with the daemon's uvicorn server on a free loopback port; yield its URL."""
    from eventwatch import daemon  # noqa: PLC0415 - only the HTTP tests need the server

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")  # type: ignore[arg-type]
    server = daemon._Server(config)  # noqa: SLF001 - the server the daemon itself runs
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the shipped config and calendars, with its own state."""
    shutil.copytree(SHIPPED_CONFIG.parent, tmp_path / "config")
    shutil.copytree(SHIPPED_CALENDARS, tmp_path / "calendars")
    return tmp_path
