"""What several test files share: the daemon as a process, servers on loopback, sites to run on.

Test files import from here, never from one another, so that each test file holds only the
tests of the module it mirrors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from prometheus_client.parser import text_string_to_metric_families

from eventwatch import daemon, feeds, httpserver, messages, policy, publication, revisions, web
from eventwatch.ledger import DATABASE_FILE, Ledger
from eventwatch.models import Calendar, ReminderPolicy

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    import trustme
    from starlette.types import ASGIApp

COMMAND = Path(sys.executable).parent / "eventwatch"
"""The installed ``eventwatch`` command, as an admin runs it."""

LIBFAKETIME = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
"""Debian's faketime package: moves a daemon's wall clock, not its monotonic one."""

SECRET = "s3cret-Pa55"  # noqa: S105 - a test value
"""The SMTP password ``Recorder`` accepts for ``eventwatch``."""

STARTED: list[subprocess.Popen[str]] = []
"""Every daemon process a test started, so that none outlives its test (see conftest)."""


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(predicate: object, timeout: float = 10) -> None:
    """Poll until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.1)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (parsed by its own parser)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    pytest.fail(f"no sample {name} {labels}")


# -- the daemon as a process -----------------------------------------------------------------


class Running:
    """One ``eventwatch run`` process on a site; its log piped, or written to ``log``."""

    def __init__(
        self,
        root: Path,
        env: dict[str, str] | None = None,
        port: int = 0,
        *,
        log: Path | None = None,
    ) -> None:
        """Start it, with ``env`` added to the environment, and wait until it answers.

        A daemon that logs much (a line per reminder) needs ``log``: a full pipe would make
        its next write to stderr wait for the test to read.
        """
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        argv = self.command(root)
        environ = os.environ | (env or {})
        if log is None:
            self.process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=environ)
        else:
            with log.open("w") as out:
                self.process = subprocess.Popen(argv, stderr=out, text=True, env=environ)
        STARTED.append(self.process)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1).raise_for_status()
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    _, output = self.stop()
                    pytest.fail(f"the daemon did not start: {output}")
                time.sleep(0.05)
            else:
                return

    def command(self, root: Path) -> list[str]:
        """The command line: the site's settings, this port, the files polled every 0.2 s."""
        return [
            str(COMMAND),
            "--config",
            str(root / "config" / "eventwatch.toml"),
            "--set",
            f"server.port={self.port}",
            "--set",
            'feeds.reload_every="PT0.2S"',
            "run",
        ]

    def get(self, path: str) -> httpx.Response:
        """GET ``path`` uncompressed."""
        return httpx.get(f"{self.url}{path}", headers={"Accept-Encoding": "identity"}, timeout=5)

    def stop(self, signum: signal.Signals = signal.SIGTERM, timeout: float = 10) -> tuple[int, str]:
        """Send ``signum``; the exit code and log once it has stopped."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            _, output = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, output = self.process.communicate()
        return self.process.returncode, output if self.log is None else self.log.read_text()


# -- sites: settings and calendars whose reminders fall due when told -----------------------
#
# The daemon reads the real clock, so the tests travel in time by writing events whose
# reminders fall due at instants relative to now.


def write_settings(root: Path, smtp_port: int | None = None, **smtp: object) -> Path:
    """``root/config/eventwatch.toml``: SMTP without TLS to ``smtp_port``, else the Maildir.

    ``smtp`` adds ``[smtp]`` settings (``timeout``, ``max_connections``); the calendars and
    the state folder are ``root/calendars`` and ``root/state``.
    """
    text = 'calendars_dir = "../calendars"\nstate_dir = "../state"\n'
    if smtp_port is not None:
        text += '[mail]\ndelivery = "smtp"\nfrom = "eventwatch <eventwatch@example.org>"\n'
        text += f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
        text += "".join(f"{key} = {value}\n" for key, value in smtp.items())
    path = root / "config" / "eventwatch.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def write_calendar(
    root: Path,
    events: Iterable[tuple[str, str, datetime]],
    recipients: Sequence[str] = ("duty@example.org",),
) -> Path:
    """``root/calendars/test.toml``: one hour-long event per (id, title, due), in UTC.

    Each event starts a day after its instant, so that its P1D reminder to every recipient
    falls due then.
    """
    text = 'name = "Test"\ntimezone = "UTC"\n[reminders]\noffsets = ["P1D"]\n'
    listed = "".join(f'  {{ address = "{address}" }},\n' for address in recipients)
    text += f"recipients = [\n{listed}]\n"
    for event_id, title, due in events:
        start = (due + timedelta(days=1)).astimezone(UTC).replace(tzinfo=None, microsecond=0)
        text += (
            f'\n[[events]]\nid = "{event_id}"\ntitle = "{title}"\n'
            f"start = {start.isoformat()}\nend = {(start + timedelta(hours=1)).isoformat()}\n"
        )
    path = root / "calendars" / "test.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def numbered(dues: Iterable[datetime], digits: int = 0) -> list[tuple[str, str, datetime]]:
    """Events ``e0``, ``e1``... titled ``Event 0``... due at ``dues`` (ids zero-padded)."""
    return [(f"e{n:0{digits}d}", f"Event {n}", due) for n, due in enumerate(dues)]


def reminder_site(
    root: Path, port: int, first: datetime, second: datetime, timeout: int = 5
) -> None:
    """Settings for SMTP to ``port``, and two events whose P1D reminders fall due at the times."""
    write_settings(root, port, timeout=timeout)
    write_calendar(root, numbered((first, second)))


HOSTILE_CALENDAR = """\
name = "Hostile"
timezone = "Europe/Brussels"

[reminders]
offsets = ["P1D"]
recipients = [
    { address = "bad@bücher.example", name = "Bad" },
    { address = "ok@example.org", name = "Bad =?UTF-8?Q?=0A?=Bcc: x@evil.example" },
    { address = "user@xn--bcher-kva.example" },
    { address = "bädi@example.org", name = "Bädi" },
]

[[events]]
id = "meeting"
title = "Delta =?UTF-8?Q?=0A?=Bcc: x@evil.example check"
location = "x =?UTF-8?Q?=0A=0A?=Reply-To: y@evil.example"
start = 2026-05-04T10:00:00
end = 2026-05-04T12:00:00
"""
"""A calendar whose text once added mail headers or stopped a batch: four recipients, one event."""


# -- what a run left in the state folder ------------------------------------------------------


def message_id(content: bytes) -> bytes:
    """The Message-ID header of a raw message."""
    return content.split(b"Message-ID: ")[1].split(b"\r\n")[0]


def statuses(root: Path) -> list[str]:
    """The status of each reminder in the ledger of the state folder under ``root``."""
    ledger = Ledger.in_folder(root / "state")
    try:
        return sorted(row.status.value for row in ledger.rows().values())
    finally:
        ledger.close()


# -- SMTP on loopback -------------------------------------------------------------------------


class Recorder:
    """An aiosmtpd handler that keeps what it accepts and can answer with given replies.

    aiosmtpd calls its hooks by fixed names with fixed, loosely typed signatures.
    """

    def __init__(self) -> None:
        """Accept everything until told otherwise."""
        self.received: list[Any] = []
        self.rcpt_replies: list[str] = []
        self.data_replies: list[str] = []
        self.logins: list[tuple[str, str]] = []
        self.ehlos = 0
        self.arrived: list[float] = []
        self.stalls: list[float] = []
        """Seconds to wait before answering DATA, one per message, taken in turn."""
        self.stalled: list[bytes] = []
        """What arrived while the server made the sender wait."""
        self.delay = 0.0
        """Seconds every DATA waits before its answer: a slow server."""

    async def handle_EHLO(  # noqa: N802
        self,
        server: Any,  # noqa: ANN401, ARG002
        session: Any,  # noqa: ANN401
        envelope: Any,  # noqa: ANN401, ARG002
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Count greetings: one per connection (two with STARTTLS)."""
        self.ehlos += 1
        session.host_name = hostname  # aiosmtpd leaves this to a hook that handles EHLO
        return responses

    async def handle_RCPT(  # noqa: N802
        self,
        server: Any,  # noqa: ANN401, ARG002
        session: Any,  # noqa: ANN401, ARG002
        envelope: Any,  # noqa: ANN401
        address: str,
        options: Any,  # noqa: ANN401, ARG002
    ) -> str:
        """Refuse with the next queued reply, if any."""
        if self.rcpt_replies:
            return self.rcpt_replies.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self,
        server: Any,  # noqa: ANN401, ARG002
        session: Any,  # noqa: ANN401, ARG002
        envelope: Any,  # noqa: ANN401
    ) -> str:
        """Wait as told, then refuse with the next queued reply, if any, else keep the message."""
        if self.stalls:
            self.stalled.append(envelope.content)
            await asyncio.sleep(self.stalls.pop(0))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.data_replies:
            return self.data_replies.pop(0)
        self.received.append(envelope)
        self.arrived.append(time.time())
        return "250 2.0.0 accepted"

    def authenticate(
        self,
        server: Any,  # noqa: ANN401, ARG002
        session: Any,  # noqa: ANN401, ARG002
        envelope: Any,  # noqa: ANN401, ARG002
        mechanism: str,  # noqa: ARG002
        data: Any,  # noqa: ANN401
    ) -> AuthResult:
        """Accept ``eventwatch`` with ``SECRET``; remember every attempt."""
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        # handled=False: aiosmtpd itself answers 235 or 535.
        return AuthResult(success=(login, password) == ("eventwatch", SECRET), handled=False)


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    """A server TLS context with a certificate for 127.0.0.1 issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


class Server:
    """An aiosmtpd server on a free loopback port."""

    def __init__(self, recorder: Recorder, **options: Any) -> None:  # noqa: ANN401
        """Start it with ``options`` for aiosmtpd's Controller."""
        self.port = free_port()
        self.controller = Controller(
            recorder,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=recorder.authenticate,
            **options,
        )
        self.controller.start()

    def stop(self) -> None:
        """Stop it."""
        self.controller.stop()


# -- systemd's end of $NOTIFY_SOCKET ----------------------------------------------------------


class Listener:
    """The service manager's end of ``$NOTIFY_SOCKET``: a datagram socket this test owns.

    ``on_ready`` runs in the receiving thread the moment READY=1 arrives.
    """

    def __init__(self, folder: Path, on_ready: object = None) -> None:
        """Bind a socket in ``folder`` and start receiving."""
        self.path = folder / "notify.sock"
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(self.path))
        self.socket.settimeout(0.2)
        self.received: list[tuple[float, dict[str, str]]] = []
        self.on_ready = on_ready
        self.ready_checks: list[object] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            if fields.get("READY") == "1" and callable(self.on_ready):
                self.ready_checks.append(self.on_ready())
            self.received.append((time.monotonic(), fields))

    def with_key(self, key: str) -> list[dict[str, str]]:
        """Every datagram that set ``key``, in order."""
        return [fields for _, fields in self.received if key in fields]

    def close(self) -> None:
        """Stop receiving."""
        self._done.set()
        self._thread.join()
        self.socket.close()


# -- HTTP on loopback -------------------------------------------------------------------------


@contextlib.contextmanager
def _running(server: daemon._Server, **run: Any) -> Iterator[daemon._Server]:  # noqa: ANN401
    """``server`` run in a thread until the block ends; fails the test if it does not start."""
    thread = threading.Thread(target=server.run, kwargs=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """Serve ``app`` with the daemon's uvicorn server on a free loopback port; yield its URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")  # type: ignore[arg-type]
    with _running(daemon._Server(config)) as server:  # noqa: SLF001 - the daemon's own server
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


@contextlib.contextmanager
def serving_as_daemon(
    app: ASGIApp, request_timeout: float = httpserver.REQUEST_TIMEOUT
) -> Iterator[tuple[str, int]]:
    """Serve ``app`` on a free loopback port as the daemon does; yield its host and port."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = daemon._Server(httpserver.config(app, request_timeout=request_timeout))  # noqa: SLF001
    with _running(server, sockets=[sock]):
        yield "127.0.0.1", sock.getsockname()[1]


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
"""The instant the web tests serve at."""


def calendars() -> tuple[Calendar, ...]:
    """Two calendars; one has an HTML-looking title and an event per category."""
    first = Calendar.model_validate(
        {
            "id": "alpha",
            "name": "Alpha <script>alert(1)</script>",
            "timezone": "Europe/Brussels",
            "events": [
                {
                    "id": "past",
                    "title": "Past & gone",
                    "start": date(2026, 2, 1),
                    "categories": ["summit"],
                },
                {
                    "id": "soon",
                    "title": "Soon <b>",
                    "start": date(2026, 6, 1),
                    "categories": ["ministerial"],
                },
                {
                    "id": "later",
                    "title": "Later",
                    "start": date(2026, 9, 1),
                    "categories": ["other"],
                },
            ],
        },
    )
    second = Calendar.model_validate(
        {
            "id": "beta",
            "name": "Beta",
            "timezone": "UTC",
            "events": [{"id": "one", "title": "One", "start": date(2026, 7, 1)}],
        },
    )
    return (first, second)


# -- feeds of small calendars ------------------------------------------------------------------

STAMP = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
"""When every event of ``render`` was first revised."""

HEADER = feeds.Header("Test", "A feed", timedelta(hours=1))


def entries_of(*cals: Calendar, alarms: tuple[timedelta, ...] = ()) -> list[feeds.Entry]:
    """Each event with a first revision stamped ``STAMP``."""
    return [
        feeds.Entry(e, revisions.revise(e, None, STAMP), alarms) for c in cals for e in c.events
    ]


def render(*cals: Calendar, **kwargs: Any) -> bytes:  # noqa: ANN401
    """The feed of ``cals``."""
    return feeds.Renderer().render(HEADER, entries_of(*cals, **kwargs)).body


def calendar(*events: dict[str, Any]) -> Calendar:
    """A Brussels calendar ``cal`` with the given events."""
    return Calendar.model_validate(
        {"id": "cal", "name": "Cal", "timezone": "Europe/Brussels", "events": list(events)},
    )


# Reminders and their messages, as the reminder-side tests make them.

SENDER = messages.Sender("eventwatch <eventwatch@example.org>")
SENT = datetime(2026, 6, 30, 6, 0, tzinfo=UTC)


def reminder(
    offset: str = "P7D",
    name: str = "Duty officer",
    address: str = "duty@example.org",
    **event: Any,  # noqa: ANN401
) -> policy.Reminder:
    """The ``offset`` reminder of one event (the summit unless told otherwise) to one person."""
    table = {
        "id": "summit-2026-07",
        "title": "NATO Summit 2026",
        "start": date(2026, 7, 7),
        "end": date(2026, 7, 8),
        "location": "Ankara, Türkiye",
        "timezone": "Europe/Istanbul",
    } | event
    cal = Calendar.model_validate(
        {
            "id": "nato-2026",
            "name": "NATO",
            "timezone": "Europe/Brussels",
            "reminders": {
                "offsets": [offset],
                "recipients": [
                    {"address": address, "name": name, "timezone": "America/New_York"},
                ],
            },
            "events": [table],
        },
    )
    (found,) = policy.reminders((cal,), ReminderPolicy())
    return found


def ics_of(r: policy.Reminder) -> bytes:
    """The one-event calendar attached to ``r``'s message."""
    entry = feeds.Entry(r.event, revisions.revise(r.event, None, SENT))
    return (
        feeds.Renderer().render(feeds.Header(r.event.title, "", timedelta(hours=1)), [entry]).body
    )


DUE = datetime(2026, 7, 6, 6, 0, tzinfo=UTC)  # P1D before the summit, 09:00 Istanbul
STARTS = datetime(2026, 7, 7, 6, 0, tzinfo=UTC)


def plan(recipients: int = 1) -> list[policy.Reminder]:
    """The summit's P1D reminder for one recipient (or ``recipients``)."""
    addresses = ["duty@example.org"] + [f"r{n}@example.org" for n in range(1, recipients)]
    cal = Calendar.model_validate(
        {
            "id": "nato-2026",
            "name": "NATO",
            "timezone": "Europe/Istanbul",
            "reminders": {"offsets": ["P1D"], "recipients": [{"address": a} for a in addresses]},
            "events": [{"id": "summit", "title": "Summit", "start": date(2026, 7, 7)}],
        },
    )
    return policy.reminders((cal,), ReminderPolicy())


@contextlib.contextmanager
def published(folder: Path) -> Iterator[web.State]:
    """What the web app serves: the two ``calendars``, revisions in a real state database."""
    ledger = Ledger.in_folder(folder / "state")
    options = publication.Options(timedelta(hours=1), alarms=False, defaults=ReminderPolicy())
    built = publication.build(calendars(), options, ledger, feeds.Renderer(), NOW)
    try:
        yield web.State(built, "https://cal.example.org/", max_age=300, gzip=True, last_reload=NOW)
    finally:
        ledger.close()


def version_2_ledger(
    folder: Path, *, status: str = "pending", notice: str = "u|changed|4|a@example.org"
) -> None:
    """A schema 2 ledger in ``folder``: a sent reminder, and a ``status`` notice, key ``notice``."""
    folder.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{folder / DATABASE_FILE}")
    with engine.begin() as connection:
        for sql in (
            "CREATE TABLE schema_version (version INTEGER NOT NULL)",
            "INSERT INTO schema_version VALUES (2)",
            (
                "CREATE TABLE revisions (uid VARCHAR(300) PRIMARY KEY, sequence INTEGER "
                "NOT NULL, major VARCHAR(64) NOT NULL, content VARCHAR(64) NOT NULL, "
                "modified BIGINT NOT NULL)"
            ),
            (
                "CREATE TABLE reminders (key VARCHAR(700) PRIMARY KEY, event_uid VARCHAR(300) "
                'NOT NULL, recipient VARCHAR(320) NOT NULL, "offset" VARCHAR(40) NOT NULL, '
                "due BIGINT NOT NULL, status VARCHAR(10) NOT NULL, attempts INTEGER NOT NULL, "
                "next_attempt BIGINT, last_error TEXT, message_id VARCHAR(300), sent_at BIGINT)"
            ),
            "CREATE INDEX reminders_by_status_due ON reminders (status, due)",
            (
                "INSERT INTO reminders VALUES ('u|20260707T060000Z|P1D|a@example.org', 'u', "
                "'a@example.org', 'P1D', 100, 'sent', 1, NULL, NULL, '<m@x>', 100)"
            ),
            (
                f"INSERT INTO reminders VALUES ('{notice}', 'u', "  # noqa: S608 - test values
                f"'a@example.org', 'changed', 200, '{status}', 0, NULL, NULL, NULL, NULL)"
            ),
        ):
            connection.execute(sa.text(sql))
    engine.dispose()
