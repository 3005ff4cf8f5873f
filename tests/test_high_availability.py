"""Several daemons on one PostgreSQL ledger: each reminder sent once, the same feeds everywhere.

Real parts only: ``eventwatch run`` processes, a throw-away PostgreSQL server, an SMTP server
on loopback. Exactly-once is counted at the SMTP server, by Message-ID. The fault scenarios
(a kill, skewed clocks, the database stopped) run with ``make test-reliability``.
"""

from __future__ import annotations

import collections
import shutil
import signal
import socket
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from eventwatch.ledger import Ledger
from eventwatch.policy import Status

from .helpers import (
    LIBFAKETIME,
    Recorder,
    Running,
    Server,
    message_id,
    numbered,
    wait_for,
    write_calendar,
    write_settings,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from .conftest import PostgresServer


def _site(root: Path, smtp_port: int, database: str, lease: str = "PT2M") -> Path:
    """Settings for SMTP to ``smtp_port`` and the ledger at ``database``; calendars to come."""
    root.mkdir()
    path = write_settings(root, smtp_port)
    path.write_text(path.read_text() + f'[database]\nurl = "{database}"\nclaim_lease = "{lease}"\n')
    return root


def _crowd(roots: list[Path], events: int, recipients: int, due: datetime) -> None:
    """The same calendar in every site: ``events`` events, each reminding ``recipients``."""
    addresses = [f"r{n:03d}@example.org" for n in range(recipients)]
    for root in roots:
        write_calendar(root, numbered([due] * events, digits=2), addresses)


def _ids(recorder: Recorder) -> collections.Counter[bytes]:
    """How many copies of each Message-ID the server accepted."""
    return collections.Counter(message_id(e.content) for e in list(recorder.received))


def _statuses(database: str) -> dict[str, Status]:
    """Each reminder's status in the shared ledger."""
    ledger = Ledger(database, upgrade=False)
    try:
        return {key: row.status for key, row in ledger.rows().items()}
    finally:
        ledger.close()


def _instance_of(running: Running) -> str:
    """The instance name a daemon claims with by default: host name and process id."""
    return f"{socket.gethostname()}-{running.process.pid}"


@pytest.fixture
def smtp() -> Iterator[tuple[Server, Recorder]]:
    """An SMTP server on loopback that keeps what it accepts."""
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    yield server, recorder
    server.stop()


def test_two_daemons_send_each_of_400_reminders_once(
    tmp_path: Path, postgres_database: str, smtp: tuple[Server, Recorder]
) -> None:
    """Two daemons on one ledger, 400 reminders due at once: each recipient gets one copy."""
    server, recorder = smtp
    roots = [_site(tmp_path / name, server.port, postgres_database) for name in "ab"]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    _crowd(roots, events=4, recipients=100, due=due)
    daemons = [Running(root, log=root / "daemon.log") for root in roots]
    try:
        wait_for(lambda: len(recorder.received) >= 400, timeout=60)
        time.sleep(2)  # a copy sent twice would arrive now
    finally:
        outputs = [d.stop()[1] for d in daemons]
    ids = _ids(recorder)
    assert len(ids) == 400, outputs
    assert set(ids.values()) == {1}, [i for i, n in ids.items() if n > 1]
    recipients = collections.Counter(
        (e.rcpt_tos[0], e.content.split(b"Subject: ")[1][:60]) for e in recorder.received
    )
    assert set(recipients.values()) == {1}
    assert set(_statuses(postgres_database).values()) == {Status.SENT}


@pytest.mark.reliability
def test_a_killed_daemons_reminders_are_taken_over_once_its_lease_ends(
    tmp_path: Path, postgres_database: str, smtp: tuple[Server, Recorder]
) -> None:
    """One of two daemons killed amid 800: the other takes over, nobody is left out.

    Only what was in flight at the kill goes twice, with the first copy's Message-ID; the
    killed one, started again, sends nothing more.
    """
    server, recorder = smtp
    recorder.delay = 0.04  # a slow server: the kill lands in the middle
    roots = [_site(tmp_path / name, server.port, postgres_database, "PT5S") for name in "ab"]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    _crowd(roots, events=8, recipients=100, due=due)
    killed, survivor = (Running(root, log=root / "daemon.log") for root in roots)
    instance = _instance_of(killed)
    try:
        wait_for(lambda: len(recorder.received) >= 200, timeout=60)
        killed.process.send_signal(signal.SIGKILL)
        killed.process.wait()
        at_kill = len(recorder.received)
        wait_for(lambda: len(_ids(recorder)) >= 800, timeout=90)
        time.sleep(2)  # what would still come
        settled = len(recorder.received)
        again = Running(roots[0], log=roots[0] / "again.log")
        time.sleep(3)  # two polls (lease / 4) after it is ready
        after_restart = len(recorder.received)
        again.stop()
    finally:
        survivor.stop()
        killed.stop()
    ids = _ids(recorder)
    assert len(ids) == 800  # nobody left out
    assert at_kill < 800
    repeated = {i for i, n in ids.items() if n > 1}
    assert max(ids.values()) <= 2
    assert len(repeated) <= 4  # at most one in flight on each of the killed one's connections
    assert after_restart == settled
    ledger = Ledger(postgres_database, upgrade=False)
    try:
        rows = ledger.rows()
        assert {row.status for row in rows.values()} == {Status.SENT}
        by_id = {row.message_id.encode(): key for key, row in rows.items() if row.message_id}
        for repeat in repeated:  # taken over: a first attempt by the killed one, unsettled
            attempts = ledger.attempts(by_id[repeat])
            assert [(a.instance, a.result) for a in attempts][:1] == [(instance, None)]
        took_over = [
            key
            for key in rows
            if [a.instance for a in ledger.attempts(key)][:1] == [instance]
            and len(ledger.attempts(key)) == 2
        ]
    finally:
        ledger.close()
    assert took_over  # the killed one held claims it never settled
    assert "reminder sent" not in (roots[0] / "again.log").read_text()


@pytest.mark.reliability
def test_daemons_with_skewed_clocks_send_on_the_databases_time(
    tmp_path: Path, postgres_database: str, smtp: tuple[Server, Recorder]
) -> None:
    """A daemon ten minutes ahead sends nothing early; one ten minutes behind, nothing late."""
    assert LIBFAKETIME, "install Debian's faketime package (.ci/run does)"
    server, recorder = smtp
    roots = [_site(tmp_path / name, server.port, postgres_database, "PT8S") for name in "ab"]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    _crowd(roots, events=2, recipients=10, due=due)
    skews = []
    for root, skew in zip(roots, ("+10m", "-10m"), strict=True):
        (root / "faketime").write_text(f"{skew}\n")
        skews.append(
            {
                "LD_PRELOAD": str(LIBFAKETIME[0]),
                "FAKETIME_TIMESTAMP_FILE": str(root / "faketime"),
                "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            }
        )
    daemons = [Running(r, env=e, log=r / "daemon.log") for r, e in zip(roots, skews, strict=True)]
    try:
        wait_for(lambda: len(recorder.received) >= 20, timeout=40)
        time.sleep(2)
    finally:
        outputs = [d.stop()[1] for d in daemons]
    ids = _ids(recorder)
    assert (len(ids), set(ids.values())) == (20, {1}), outputs
    assert min(recorder.arrived) >= due.timestamp()
    assert max(recorder.arrived) < due.timestamp() + 10  # not ten minutes late


def test_two_daemons_serve_the_same_bytes_before_and_after_an_edit(
    tmp_path: Path, postgres_database: str, smtp: tuple[Server, Recorder]
) -> None:
    """Both instances serve one feed with one ETag, also after a rolling edit of the file."""
    server, _ = smtp
    roots = [_site(tmp_path / name, server.port, postgres_database) for name in "ab"]
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    _crowd(roots, events=3, recipients=1, due=later)
    daemons = [Running(root, log=root / "daemon.log") for root in roots]
    try:
        first = [d.get("/feeds/all.ics") for d in daemons]
        time.sleep(1.1)  # a second on: a revision made now would show another LAST-MODIFIED
        edited = roots[0] / "calendars" / "test.toml"
        edited.write_text(edited.read_text().replace('title = "Event 1"', 'title = "Moved"'))
        wait_for(lambda: b"SUMMARY:Moved" in daemons[0].get("/feeds/all.ics").content)
        time.sleep(1.1)
        shutil.copy(edited, roots[1] / "calendars" / "test.toml")
        wait_for(lambda: b"SUMMARY:Moved" in daemons[1].get("/feeds/all.ics").content)
        second = [d.get("/feeds/all.ics") for d in daemons]
    finally:
        for d in daemons:
            d.stop()
    for pair in (first, second):
        assert pair[0].content == pair[1].content
        assert pair[0].headers["ETag"] == pair[1].headers["ETag"]
        assert pair[0].headers["Last-Modified"] == pair[1].headers["Last-Modified"]
    assert first[0].headers["ETag"] != second[0].headers["ETag"]


@pytest.mark.reliability
def test_a_database_stopped_across_a_due_instant_delays_but_loses_nothing(
    tmp_path: Path, postgres_server: PostgresServer, smtp: tuple[Server, Recorder]
) -> None:
    """PostgreSQL down 25 s across a due instant: feeds served, health 503, nothing lost.

    Once it is back, each reminder that fell due is sent once by one of the two daemons, and
    each daemon logs one line when sending fails and one when it works again.
    """
    server, recorder = smtp
    database = f"{postgres_server.url}/postgres"
    roots = [_site(tmp_path / name, server.port, database, "PT8S") for name in "ab"]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    _crowd(roots, events=2, recipients=10, due=due)
    daemons = [Running(root, log=root / "daemon.log") for root in roots]
    try:
        postgres_server.stop()
        time.sleep(max(0.0, due.timestamp() - time.time()) + 2)  # past the due instant
        during = [(d.get("/feeds/all.ics"), d.get("/healthz")) for d in daemons]
        time.sleep(max(0.0, due.timestamp() + 10 - time.time()))  # 25 s down in all
        sent_while_down = len(recorder.received)
        postgres_server.start()
        wait_for(lambda: len(recorder.received) >= 20, timeout=60)
        time.sleep(3)  # a copy sent twice would arrive now
        healthy = [d.get("/healthz").status_code for d in daemons]
    finally:
        logs = [d.stop()[1] for d in daemons]
    assert [(feed.status_code, health.status_code) for feed, health in during] == [(200, 503)] * 2
    assert all(b"BEGIN:VEVENT" in feed.content for feed, _ in during)
    assert all(health.json()["ledger"] == "unreachable" for _, health in during)
    assert sent_while_down == 0
    ids = _ids(recorder)
    assert (len(ids), set(ids.values())) == (20, {1}), logs
    assert healthy == [200, 200]
    for log in logs:
        assert log.count("sending failed") == 1, log
        assert log.count("sending works again") == 1, log
        assert log.count("ledger does not answer") == 1, log  # not once a round (0.2 s)
        assert log.count("ledger answers again") == 1, log


def _sequence(database: str, uid: str) -> int:
    """The SEQUENCE the shared ledger holds for event ``uid``."""
    ledger = Ledger(database, upgrade=False)
    try:
        return ledger.revisions()[uid].sequence
    finally:
        ledger.close()


def test_an_instance_restarted_with_the_older_file_amid_a_rolling_deploy_defers(
    tmp_path: Path, postgres_database: str, smtp: tuple[Server, Recorder]
) -> None:
    """Mid-deploy, a daemon restarted with the old file neither revives nor cancels, nor bumps.

    One daemon gets the moved event first; the other, restarted before its copy arrives,
    leaves the ledger as the newer file made it (also when reloaded), then follows once its
    copy is new too.
    """
    server, _ = smtp
    roots = [_site(tmp_path / name, server.port, postgres_database) for name in "ab"]
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    recipients = [f"r{n}@example.org" for n in range(5)]
    for root in roots:
        write_calendar(root, numbered([due]), recipients)
    first, second = (Running(root, log=root / "daemon.log") for root in roots)
    try:
        write_calendar(roots[0], numbered([due + timedelta(days=1)]), recipients)  # moved
        wait_for(lambda: sorted(_statuses(postgres_database).values()).count("cancelled") == 5)
        moved = _statuses(postgres_database)
        second.stop()
        second = Running(roots[1], log=roots[1] / "restarted.log")  # the old file still
        time.sleep(1)
        during = _statuses(postgres_database)
        second.process.send_signal(signal.SIGHUP)  # a reload, however late, changes nothing
        log = roots[1] / "restarted.log"
        wait_for(lambda: "reloaded" in log.read_text())
        reloaded = _statuses(postgres_database)
        sequence = _sequence(postgres_database, "test/e0@eventwatch")
        shutil.copy(roots[0] / "calendars" / "test.toml", roots[1] / "calendars" / "test.toml")
        newest = first.get("/feeds/all.ics").content
        wait_for(lambda: second.get("/feeds/all.ics").content == newest)
        after = _statuses(postgres_database)
    finally:
        first.stop()
        second.stop()
    assert sorted(moved.values()) == ["cancelled"] * 5 + ["pending"] * 5
    assert during == moved
    assert reloaded == moved
    assert after == moved
    assert sequence == 1
    text = log.read_text()
    assert "another instance has a newer file" in text
    assert "every calendar file is the newest" in text


def test_an_instance_that_has_not_read_a_newer_file_leaves_its_reminders_to_others(
    tmp_path: Path, postgres_database: str, smtp: tuple[Server, Recorder]
) -> None:
    """A running daemon whose copy of a file is older never skips what only the newer plans.

    The event moves on one daemon, which then stops; the other, still on the old file, finds
    the moved event's reminders due and gives them back; the first, started again, sends them.
    """
    server, recorder = smtp
    roots = [_site(tmp_path / name, server.port, postgres_database, "PT8S") for name in "ab"]
    far = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    recipients = [f"r{n}@example.org" for n in range(5)]
    for root in roots:
        write_calendar(root, numbered([far]), recipients)
    first, second = (Running(root, log=root / "daemon.log") for root in roots)
    try:
        soon = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        write_calendar(roots[0], numbered([soon]), recipients)  # moved, on the first only
        wait_for(lambda: sorted(_statuses(postgres_database).values()).count("cancelled") == 5)
        first.stop()
        log = roots[1] / "daemon.log"
        wait_for(lambda: "left to an instance with a newer file" in log.read_text(), timeout=20)
        while_alone = len(recorder.received)
        first = Running(roots[0], log=roots[0] / "again.log")
        wait_for(lambda: len(recorder.received) >= 5, timeout=20)
        time.sleep(1)
    finally:
        first.stop()
        second.stop()
    assert while_alone == 0
    ids = _ids(recorder)
    assert (len(ids), set(ids.values())) == (5, {1})
    assert sorted(_statuses(postgres_database).values()) == ["cancelled"] * 5 + ["sent"] * 5


def test_a_daemon_stops_on_sigterm_while_the_database_is_down(
    tmp_path: Path, postgres_server: PostgresServer, smtp: tuple[Server, Recorder]
) -> None:
    """With PostgreSQL gone, SIGTERM still ends the daemon cleanly, well within systemd's 30 s."""
    server, _ = smtp
    root = _site(tmp_path / "a", server.port, f"{postgres_server.url}/postgres")
    _crowd([root], events=1, recipients=1, due=datetime.now(UTC) + timedelta(days=1))
    running = Running(root, log=root / "daemon.log")
    postgres_server.stop()
    began = time.monotonic()
    code, log = running.stop(timeout=25)
    assert (code, "stopped" in log) == (0, True), log
    assert time.monotonic() - began < 20


def test_a_rollback_made_while_stopped_counts_as_the_newest_file(
    tmp_path: Path, postgres_database: str, smtp: tuple[Server, Recorder]
) -> None:
    """An event moved, then moved back while the daemon was stopped: it follows the file.

    The state folder remembers the files last applied, so the return to the earlier file is
    seen as a change at the start, not as a host that missed a deploy.
    """
    server, _ = smtp
    root = _site(tmp_path / "a", server.port, postgres_database)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    recipients = ["r0@example.org", "r1@example.org"]
    first = write_calendar(root, numbered([due]), recipients).read_text()
    running = Running(root, log=root / "daemon.log")
    try:
        write_calendar(root, numbered([due + timedelta(days=1)]), recipients)
        wait_for(lambda: sorted(_statuses(postgres_database).values()).count("cancelled") == 2)
    finally:
        running.stop()
    (root / "calendars" / "test.toml").write_text(first)  # the rollback, while stopped
    again = Running(root, log=root / "again.log")
    try:
        wait_for(lambda: sorted(_statuses(postgres_database).values()).count("pending") == 2)
        statuses = _statuses(postgres_database)
    finally:
        again.stop()
    log = (root / "again.log").read_text()
    assert "another instance has a newer file" not in log
    pending = sorted(key for key, status in statuses.items() if status == Status.PENDING)
    starts = (due + timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ")  # the first time again
    assert len(pending) == 2
    assert all(f"|{starts}|" in key for key in pending), pending


def test_a_reload_serves_what_another_instance_stored_meanwhile(
    tmp_path: Path, postgres_database: str, smtp: tuple[Server, Recorder]
) -> None:
    """An edit made and reverted on one instance reaches the other at its next reload.

    The other held the same file throughout, so it defers nothing: its reload must still
    see the SEQUENCE stored meanwhile, not serve what it built before (second review).
    """
    server, _ = smtp
    roots = [_site(tmp_path / name, server.port, postgres_database) for name in "ab"]
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    _crowd(roots, events=3, recipients=1, due=later)
    a, b = (Running(root, log=root / "daemon.log") for root in roots)
    try:
        path = roots[1] / "calendars" / "test.toml"
        original = path.read_text()
        path.write_text(original.replace('title = "Event 1"', 'title = "Moved"'))
        wait_for(lambda: b"SUMMARY:Moved" in b.get("/feeds/all.ics").content)
        path.write_text(original)
        wait_for(lambda: b"SUMMARY:Moved" not in b.get("/feeds/all.ics").content)
        assert _sequence(postgres_database, "test/e01@eventwatch") == 2
        a.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded" in (roots[0] / "daemon.log").read_text())
        served = [d.get("/feeds/all.ics") for d in (a, b)]
    finally:
        a.stop()
        b.stop()
    assert b"SEQUENCE:2\r\n" in served[0].content
    assert served[0].content == served[1].content
    assert served[0].headers["ETag"] == served[1].headers["ETag"]
