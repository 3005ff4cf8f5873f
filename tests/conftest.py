"""Shared fixtures: a clean environment, the shipped files, throw-away folders and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from eventwatch import cli

from .helpers import STARTED, free_port

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


@pytest.fixture
def shipped(tmp_path: Path) -> tuple[str, ...]:
    """The shipped config, with a state folder of the test's own (never the clone's)."""
    return ("--config", str(SHIPPED_CONFIG), "--set", f"state_dir={tmp_path / 'state'}")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A copy of the shipped config and calendars, with its own state."""
    shutil.copytree(SHIPPED_CONFIG.parent, tmp_path / "config")
    shutil.copytree(SHIPPED_CALENDARS, tmp_path / "calendars")
    return tmp_path


def _postgres_program(name: str) -> str | None:
    """A PostgreSQL server program from Debian's package (not on PATH), if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


class PostgresServer:
    """A throw-away PostgreSQL server on a free loopback port, which a test may stop and start.

    ``initdb`` refuses to run as root, so the server runs as the ``postgres`` user then.
    """

    def __init__(self) -> None:
        """Make its data folder; start it."""
        initdb, pg_ctl = _postgres_program("initdb"), _postgres_program("pg_ctl")
        if initdb is None or pg_ctl is None:
            pytest.skip("PostgreSQL is not installed (no initdb): apt-get install postgresql")
        self._pg_ctl = pg_ctl
        self._as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.folder = Path(tempfile.mkdtemp(prefix="eventwatch-pg-"))
        if self._as_user:
            shutil.chown(self.folder, "postgres", "postgres")
        self.data, self.port = self.folder / "data", free_port()
        subprocess.run(
            [*self._as_user, initdb, "-D", str(self.data), "-U", "eventwatch", "--auth=trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.url = f"postgresql+psycopg://eventwatch@127.0.0.1:{self.port}"
        """Its URL without a database."""
        self.start()

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-k {self.folder} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*self._as_user, self._pg_ctl, "-D", str(self.data), "-l", str(self.folder / "log"),
             "-w", "-o", options, "start"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server at once, as a crash or a pulled cable would."""
        subprocess.run(
            [*self._as_user, self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
            check=False, capture_output=True, timeout=60,
        )  # fmt: skip

    def close(self) -> None:
        """Stop it and remove its files."""
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The session's throw-away PostgreSQL server; its URL without a database.

    Without PostgreSQL installed (``.ci/run`` installs it) the tests that need it are skipped,
    saying so, never passed.
    """
    server = PostgresServer()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test's own, to stop and start again; skipped as above."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres_database(postgres: str) -> Iterator[str]:
    """A fresh, empty database on the throw-away server, dropped afterwards; its URL."""
    name = f"t{uuid.uuid4().hex[:16]}"
    admin = sa.create_engine(f"{postgres}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres}/{name}"
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()
