"""The daemon as a process: serving, restarting, reloading edited files, stopping cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sqlite3
import subprocess
import time
import types
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import ical.calendar_stream
import icalendar
import pytest
import sqlalchemy as sa
import vobject
from aiosmtpd.controller import Controller

from eventwatch import daemon as daemon_module
from eventwatch import feeds, inputs, messages, policy
from eventwatch.daemon import Daemon, SenderLoop, StateLock, export
from eventwatch.delivery import SmtpDelivery
from eventwatch.dispatch import Dispatcher
from eventwatch.errors import OperationError
from eventwatch.ledger import SCHEMA_VERSION, Ledger

from .conftest import SHIPPED_CONFIG
from .helpers import (
    COMMAND,
    STARTED,
    Recorder,
    Running,
    Server,
    free_port,
    message_id,
    reminder_site,
    statuses,
    version_2_ledger,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from eventwatch.settings import Settings

    from .conftest import Site


@pytest.fixture
def daemon(root: Path) -> Iterator[Running]:
    """The daemon running on ``root``."""
    running = Running(root)
    yield running
    running.stop()


def stamps(body: bytes) -> dict[str, datetime]:
    """DTSTAMP by UID."""
    found = icalendar.Calendar.from_ical(body).walk("VEVENT")
    return {str(e["UID"]): e["DTSTAMP"].dt for e in found}


def sequences(body: bytes) -> dict[str, int]:
    """SEQUENCE by UID."""
    return {
        str(e["UID"]): int(e["SEQUENCE"]) for e in icalendar.Calendar.from_ical(body).walk("VEVENT")
    }


def test_serves_the_shipped_feeds_and_page(daemon: Running) -> None:
    """The served feeds hold the three NATO events as ical and vobject read them."""
    expected = {
        "nato-2026/defence-ministers-2026-02@eventwatch": (date(2026, 2, 12), date(2026, 2, 13)),
        "nato-2026/nato-ukraine-council-2026-02@eventwatch": (date(2026, 2, 12), date(2026, 2, 13)),
        "nato-2026/summit-2026-07@eventwatch": (date(2026, 7, 7), date(2026, 7, 9)),
    }
    for path in ("/feeds/all.ics", "/feeds/nato-2026.ics"):
        response = daemon.get(path)
        assert response.status_code == 200
        strict = ical.calendar_stream.IcsCalendarStream.calendar_from_ics(response.text)
        assert {e.uid: (e.dtstart, e.dtend) for e in strict.events} == expected
        other = vobject.readOne(response.text)
        assert {
            v.uid.value: (v.dtstart.value, v.dtend.value) for v in other.vevent_list
        } == expected
    assert "NATO Summit 2026" in daemon.get("/").text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(root: Path, signum: signal.Signals) -> None:
    """SIGTERM or SIGINT ends the daemon within seconds with exit 0 and a stop line in the log."""
    running = Running(root)
    started = time.monotonic()
    code, log = running.stop(signum)
    assert code == 0
    assert time.monotonic() - started < 5
    assert f"stopping signal={signum.name}" in log
    assert "Traceback" not in log


def test_restart_serves_identical_bytes(root: Path) -> None:
    """A restart with unchanged files serves the same bytes under the same ETag, from its cache."""
    first = Running(root)
    before = first.get("/feeds/all.ics")
    first.stop()
    time.sleep(1.1)  # a new second: any re-stamping would show
    second = Running(root)
    after = second.get("/feeds/all.ics")
    _, log = second.stop()
    assert after.content == before.content
    assert after.headers["etag"] == before.headers["etag"]
    assert "feed cache loaded events=3" in log  # the restart reused the encoded events


def test_a_restart_after_an_edit_starts_from_the_cache_of_the_edit(root: Path) -> None:
    """The cache saved after a reload (once the new feed is served) holds the edited event."""
    running = Running(root)
    first = running.get("/feeds/all.ics").content
    path = root / "calendars" / "nato-2026.toml"
    path.write_text(path.read_text().replace('location = "Ankara, Türkiye"', 'location = "Ankara"'))
    wait_for(lambda: running.get("/feeds/all.ics").content != first)
    edited = running.get("/feeds/all.ics")
    wait_for(lambda: b"LOCATION:Ankara\r\n" in (root / "state" / "feed-cache.ics").read_bytes())
    running.stop()
    again = Running(root)
    after = again.get("/feeds/all.ics")
    _, log = again.stop()
    assert (after.content, after.headers["etag"]) == (edited.content, edited.headers["etag"])
    assert "feed cache loaded events=3" in log


def test_edit_bumps_only_the_edited_event(daemon: Running, root: Path) -> None:
    """Moving the summit raises its SEQUENCE by one; the other events keep theirs."""
    first = daemon.get("/feeds/all.ics").content
    before = sequences(first)
    time.sleep(1.1)  # a new second, so a new stamp would show
    path = root / "calendars" / "nato-2026.toml"
    path.write_text(path.read_text().replace('location = "Ankara, Türkiye"', 'location = "Ankara"'))
    wait_for(lambda: sequences(daemon.get("/feeds/all.ics").content) != before)
    second = daemon.get("/feeds/all.ics").content
    after = sequences(second)
    summit = "nato-2026/summit-2026-07@eventwatch"
    assert after[summit] == before[summit] + 1
    old_stamps, new_stamps = stamps(first), stamps(second)
    assert new_stamps.pop(summit) > old_stamps.pop(summit)
    assert new_stamps == old_stamps  # the other events' DTSTAMP did not move
    assert {k: v for k, v in after.items() if k != summit} == {
        k: v for k, v in before.items() if k != summit
    }


def test_broken_file_keeps_the_last_good_feed(daemon: Running, root: Path) -> None:
    """An invalid edit is reported, health turns degraded, and the last good feed stays served."""
    good = daemon.get("/feeds/all.ics").content
    path = root / "calendars" / "nato-2026.toml"
    path.write_text(
        path.read_text().replace('timezone = "Europe/Istanbul"', 'timezone = "Europe/Ankara"')
    )
    wait_for(lambda: daemon.get("/healthz").json()["last_reload_error"] is not None)
    answer = daemon.get("/healthz")
    health = answer.json()
    assert (answer.status_code, health["status"]) == (503, "degraded")
    assert "'Europe/Ankara' is not an IANA time zone" in health["last_reload_error"]
    assert daemon.get("/feeds/all.ics").content == good
    code, log = daemon.stop()
    assert code == 0
    assert "reload failed" in log
    assert "calendars/nato-2026.toml" in log


def test_export_writes_what_the_server_serves(daemon: Running, root: Path) -> None:
    """``eventwatch export`` writes the served bytes, one file per feed plus the page."""
    out = root / "public"
    done = subprocess.run(
        [
            str(COMMAND),
            "--config",
            str(root / "config" / "eventwatch.toml"),
            "export",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["all.ics", "index.html", "nato-2026.ics"]
    for name in ("all", "nato-2026"):
        assert (out / f"{name}.ics").read_bytes() == daemon.get(f"/feeds/{name}.ics").content


def test_export_of_a_draft_leaves_the_running_daemons_ledger_alone(
    daemon: Running, root: Path
) -> None:
    """A draft folder exported beside a running daemon shows its SEQUENCE, and stores nothing.

    The daemon's next reload and its next start serve what they served: the draft's move is
    not theirs (it was, and a reload and a restart disagreed, when the ledger took it).
    """
    served = daemon.get("/feeds/all.ics").content
    draft = root / "draft"
    shutil.copytree(root / "calendars", draft)
    path = draft / "nato-2026.toml"
    path.write_text(path.read_text().replace('location = "Ankara, Türkiye"', 'location = "Ankara"'))
    cache = (root / "state" / "feed-cache.json").read_bytes()
    done = subprocess.run(
        [str(COMMAND), "--config", str(root / "config" / "eventwatch.toml"),
         "--set", f"calendars_dir={draft}", "export", "--out", str(root / "preview")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summit = "nato-2026/summit-2026-07@eventwatch"
    assert sequences((root / "preview" / "all.ics").read_bytes())[summit] == 1
    assert (root / "state" / "feed-cache.json").read_bytes() == cache
    reloaded = daemon.get("/healthz").json()["last_reload"]
    daemon.process.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.get("/healthz").json()["last_reload"] != reloaded)
    assert daemon.get("/feeds/all.ics").content == served
    ledger = sqlite3.connect(root / "state" / "eventwatch.db")
    try:
        (sequence,) = ledger.execute(
            "SELECT sequence FROM revisions WHERE uid = ?", (summit,)
        ).fetchone()
    finally:
        ledger.close()
    assert sequence == 0


def test_invalid_start_refuses_to_run(root: Path) -> None:
    """Broken calendars at start are exit 2 with the problem, before anything is served."""
    path = root / "calendars" / "nato-2026.toml"
    path.write_text(path.read_text().replace('status = "confirmed"', 'status = "maybe"', 1))
    done = subprocess.run(
        [str(COMMAND), "--config", str(root / "config" / "eventwatch.toml"), "run"],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )
    assert done.returncode == 2
    assert "calendars/nato-2026.toml" in done.stderr
    assert "events[0].status" in done.stderr
    assert "Traceback" not in done.stderr


def test_reminders_on_time_through_smtp_and_nothing_repeated_after_sigkill(tmp_path: Path) -> None:
    """Reminders reach SMTP within 1 s of due; a SIGKILL between them loses and repeats nothing."""
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    try:
        origin = datetime.now(UTC).replace(microsecond=0)
        first, second = origin + timedelta(seconds=6), origin + timedelta(seconds=14)
        reminder_site(tmp_path, server.port, first, second)
        running = Running(tmp_path)
        wait_for(lambda: len(recorder.received) == 1, timeout=20)
        # Between the two: once the first is recorded sent. Killed between the server's
        # acceptance and that record, it is sent again, by design (docs/guarantees.md).
        wait_for(lambda: statuses(tmp_path).count("sent") == 1)
        running.process.kill()  # SIGKILL: no clean-up at all
        running.stop()  # collects the dead process and its output
        again = Running(tmp_path)
        wait_for(lambda: len(recorder.received) == 2, timeout=20)
        time.sleep(2)  # anything repeated would arrive now
        code, log = again.stop()
    finally:
        server.stop()
    assert code == 0, log
    assert len(recorder.received) == 2
    subjects = [e.content.split(b"Subject: ")[1].split(b"\r\n")[0] for e in recorder.received]
    assert [s.split(b" (")[0] for s in subjects] == [
        b"Reminder: Event 0 in 1 day",
        b"Reminder: Event 1 in 1 day",
    ]
    for arrived, due in zip(recorder.arrived, (first, second), strict=True):
        assert 0 <= arrived - due.timestamp() < 1.0, (arrived, due)


@pytest.mark.usefixtures("daemon")
def test_second_daemon_on_the_same_state_refuses(root: Path) -> None:
    """A second eventwatch run on the same state folder exits with a clear error."""
    done = subprocess.run(
        [str(COMMAND), "--config", str(root / "config" / "eventwatch.toml"),
         "--set", f"server.port={free_port()}", "run"],
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )  # fmt: skip
    assert done.returncode == 1
    assert "another eventwatch is running on this state folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_missed_reminders_are_caught_up_or_skipped(tmp_path: Path) -> None:
    """At start, a reminder 1 h overdue is sent marked late; one 7 h overdue is skipped."""
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    try:
        origin = datetime.now(UTC).replace(microsecond=0)
        reminder_site(
            tmp_path,
            server.port,
            origin - timedelta(hours=1),
            origin - timedelta(hours=7),
        )
        running = Running(tmp_path)
        wait_for(lambda: len(recorder.received) == 1, timeout=20)
        time.sleep(1)
        code, log = running.stop()
    finally:
        server.stop()
    assert code == 0, log
    (envelope,) = recorder.received
    assert b"Subject: Late reminder: Event 0 in 1 day" in envelope.content
    assert "reminder skipped" in log
    assert "catch_up is 6:00:00" in log


def test_refused_connection_then_server_back(tmp_path: Path) -> None:
    """A reminder whose server is down is retried after a minute and delivered once it is back."""
    port = free_port()
    origin = datetime.now(UTC).replace(microsecond=0)
    due = origin + timedelta(seconds=1)
    reminder_site(tmp_path, port, due, due + timedelta(days=30))
    loaded = inputs.load(tmp_path / "config" / "eventwatch.toml")
    ledger = Ledger.in_folder(loaded.settings.state_dir)
    plan = policy.reminders(loaded.calendars, loaded.settings.reminders)
    ledger.reconcile(policy.follow(plan), origin)
    delivery = SmtpDelivery(loaded.settings.smtp)
    dispatcher = Dispatcher(
        ledger=ledger,
        delivery=delivery,
        sender=messages.Sender("eventwatch@example.org"),
        catch_up=timedelta(hours=6),
        plan={r.key: r for r in plan},
        attachment=lambda _event: b"",
    )
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)

    async def scenario() -> tuple[object, object]:
        (first,) = await dispatcher.run_due(due)
        assert ledger.next_due() == due + timedelta(minutes=1)  # retried after a minute
        controller.start()  # the server comes back
        try:
            (second,) = await dispatcher.run_due(due + timedelta(minutes=1))
        finally:
            await delivery.close()
            controller.stop()
        return first, second

    try:
        first, second = asyncio.run(scenario())
        assert ledger.rows()  # the ledger is still readable after the run
    finally:
        ledger.close()
    assert first.result == "retry"  # type: ignore[attr-defined]
    assert "SMTPConnectError" in first.detail  # type: ignore[attr-defined]
    assert second.result == "sent"  # type: ignore[attr-defined]
    assert len(recorder.received) == 1


def _dues(root: Path) -> list[datetime]:
    """The due instant of each reminder in the ledger of the state folder under ``root``."""
    ledger = Ledger.in_folder(root / "state")
    try:
        return [row.due for row in ledger.rows().values()]
    finally:
        ledger.close()


@contextlib.contextmanager
def _stalling(
    root: Path, stall: float, second: timedelta = timedelta(days=2)
) -> Iterator[tuple[Recorder, Path]]:
    """An SMTP server that holds the first DATA ``stall`` seconds, and a site sending to it.

    The first reminder falls due 4 s from now, the second ``second`` after now; SMTP
    commands time out only after the stall.
    """
    recorder = Recorder()
    recorder.stalls = [stall]
    server = Server(recorder, auth_require_tls=False)
    try:
        origin = datetime.now(UTC).replace(microsecond=0)
        first = origin + timedelta(seconds=4)
        reminder_site(root, server.port, first, origin + second, timeout=int(stall) + 10)
        yield recorder, root
    finally:
        server.stop()


def test_sigkill_mid_send_sends_again_with_the_same_message_id(tmp_path: Path) -> None:
    """A daemon killed while the server holds its DATA sends the reminder again at start."""
    with _stalling(tmp_path, 30.0) as (recorder, root):  # hangs until the daemon is gone
        running = Running(root)
        wait_for(lambda: len(recorder.stalled) == 1, timeout=20)
        running.process.kill()
        running.stop()
        assert statuses(root) == ["pending", "sending"]  # what the kill left
        again = Running(root)
        wait_for(lambda: len(recorder.received) == 1, timeout=20)
        code, log = again.stop()
    assert code == 0, log
    assert "in flight at the last stop, sending again" in log
    (envelope,) = recorder.received
    assert message_id(envelope.content) == message_id(recorder.stalled[0])
    assert statuses(tmp_path) == ["pending", "sent"]


def test_sigterm_lets_a_send_in_flight_finish(tmp_path: Path) -> None:
    """SIGTERM during a slow SMTP transaction waits for it, records it sent, and exits 0."""
    with _stalling(tmp_path, 2.0) as (recorder, root):
        running = Running(root)
        wait_for(lambda: len(recorder.stalled) == 1, timeout=20)
        code, log = running.stop()
    assert code == 0, log
    assert len(recorder.received) == 1, log
    assert "reminder sent" in log
    assert "back to pending" not in log
    assert "Traceback" not in log
    assert statuses(tmp_path) == ["pending", "sent"]


def test_sigterm_gives_up_a_hung_send_after_the_grace(tmp_path: Path) -> None:
    """A send still hanging 10 s after SIGTERM goes back to pending and the daemon exits 0."""
    with _stalling(tmp_path, 60.0) as (recorder, root):
        running = Running(root)
        wait_for(lambda: len(recorder.stalled) == 1, timeout=20)
        began = time.monotonic()
        code, log = running.stop(timeout=30)
        took = time.monotonic() - began
    assert code == 0, log
    assert 10 <= took < 15, took
    assert "sends in flight did not finish in time" in log
    assert "unfinished at stop, back to pending" in log
    assert "Traceback" not in log
    assert recorder.received == []
    assert statuses(tmp_path) == ["pending", "pending"]


def test_a_reminder_due_during_a_slow_send_goes_at_once(tmp_path: Path) -> None:
    """One falling due while an earlier send is still held by the server goes right after it."""
    # The first transaction takes 2 s, past the second's due instant 1 s after the first's.
    with _stalling(tmp_path, 2.0, second=timedelta(seconds=5)) as (recorder, root):
        running = Running(root)
        try:
            wait_for(lambda: len(recorder.received) == 2, timeout=30)
        finally:
            code, log = running.stop()
    assert code == 0, log
    # The first is accepted about 2 s after its due instant (the server's doing); the second
    # must follow at once, not wait for the next sweep a minute later.
    (first_due, second_due) = sorted(_dues(tmp_path))
    late = recorder.arrived[1] - second_due.timestamp()
    assert first_due < second_due
    assert 0 < late < 2.0, late


def test_a_file_caught_half_written_is_not_taken_as_an_edit(daemon: Running, root: Path) -> None:
    """A file cut short for a moment (still valid TOML) and then restored changes no SEQUENCE."""
    before = sequences(daemon.get("/feeds/all.ics").content)
    path = root / "calendars" / "nato-2026.toml"
    whole = path.read_text()
    lines = whole.splitlines(keepends=True)
    cut = next(n for n, line in enumerate(lines) if line.startswith('location = "Ankara'))
    path.write_text("".join(lines[:cut]))  # the summit without its place: an edit, if read
    time.sleep(0.5)  # longer than the daemon's reload_every, shorter than the settle time
    path.write_text(whole)
    time.sleep(3)
    assert sequences(daemon.get("/feeds/all.ics").content) == before
    code, log = daemon.stop()
    assert code == 0
    assert "notices queued" not in log


def test_a_state_folder_removed_while_running_stops_the_sending(root: Path) -> None:
    """Removing the state folder under the daemon degrades health and sends nothing more."""
    running = Running(root)
    state = root / "state"
    shutil.rmtree(state)
    health = running.get("/healthz")
    assert health.status_code == 503
    assert "the state folder was removed or moved" in health.json()["sending_error"]
    running.process.send_signal(signal.SIGHUP)  # a reload replans, then tries to send
    time.sleep(2)
    code, log = running.stop()
    assert code == 0
    assert "sending failed" in log
    assert "Traceback" not in log
    assert not state.exists()  # not made again behind the admin's back


def test_a_large_catch_up_does_not_delay_readiness(tmp_path: Path) -> None:
    """The daemon serves at once after downtime; what is overdue goes out in the background."""
    recorder = Recorder()
    recorder.stalls = [0.5] * 40  # 40 overdue reminders, 5 s of sending on 4 connections
    server = Server(recorder, auth_require_tls=False)
    try:
        origin = datetime.now(UTC).replace(microsecond=0)
        reminder_site(
            tmp_path, server.port, origin - timedelta(hours=1), origin + timedelta(days=2)
        )
        calendar = tmp_path / "calendars" / "test.toml"
        many = ", ".join(f'{{ address = "r{n}@example.org" }}' for n in range(40))
        calendar.write_text(calendar.read_text().replace('{ address = "duty@example.org" }', many))
        running = Running(tmp_path)  # returns once /healthz answers
        sent_when_ready = len(recorder.received)
        wait_for(lambda: len(recorder.received) == 40, timeout=30)
        code, _ = running.stop()
    finally:
        server.stop()
    assert code == 0
    assert sent_when_ready < 40


def test_sigterm_during_a_long_start_stops_cleanly(tmp_path: Path) -> None:
    """SIGTERM while 20,000 events are being rendered at start: exit 0, one line, no traceback."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "eventwatch.toml").write_text(
        'calendars_dir = "../calendars"\nstate_dir = "../state"\n'
    )
    (tmp_path / "calendars").mkdir()
    events = "".join(
        f'[[events]]\nid = "e{n}"\ntitle = "Event {n}"\nstart = 2027-01-{n % 28 + 1:02d}\n'
        for n in range(20_000)
    )
    (tmp_path / "calendars" / "big.toml").write_text(
        f'name = "Big"\ntimezone = "Europe/Brussels"\n{events}'
    )
    process = subprocess.Popen(
        [str(COMMAND), "--config", str(tmp_path / "config" / "eventwatch.toml"),
         "--set", f"server.port={free_port()}", "run"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    STARTED.append(process)
    assert process.stderr is not None
    first = process.stderr.readline()  # "loaded": the settings and files are read
    process.send_signal(signal.SIGTERM)
    rest = process.communicate(timeout=60)[1]
    assert "loaded" in first
    assert process.returncode == 0
    assert "stopped before ready" in rest
    assert "Traceback" not in rest


def test_the_watcher_outlives_a_failing_reload(site: Site) -> None:
    """A reload that fails unforeseen is logged and shown; the next SIGHUP still reloads."""
    watcher = Daemon(site.config, None)
    loaded = inputs.load(site.config, ['feeds.reload_every="PT0.05S"'])
    state = types.SimpleNamespace(last_reload_error=None)
    calls: list[int] = []
    called = asyncio.Event()

    async def reload(ledger: object, shown: object) -> None:
        del ledger, shown
        calls.append(len(calls))
        called.set()
        if len(calls) == 1:
            raise RuntimeError("a fault nobody foresaw")

    async def quiet(shown: object) -> str:
        del shown
        return ""

    watcher._reload = reload  # type: ignore[method-assign,assignment]  # noqa: SLF001
    watcher._ready = watcher._status = quiet  # type: ignore[method-assign]  # noqa: SLF001

    async def scenario() -> tuple[str | None, bool]:
        task = asyncio.create_task(watcher._watch(loaded, None, state))  # type: ignore[arg-type]  # noqa: SLF001
        watcher.reload_requested.set()
        await called.wait()
        called.clear()
        await asyncio.sleep(0.1)  # the failure is recorded after the reload raised
        error = state.last_reload_error
        watcher.reload_requested.set()
        await called.wait()
        alive = not task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return error, alive

    error, alive = asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert error == "RuntimeError: a fault nobody foresaw"
    assert alive


class _Pings:
    """A notifier that counts watchdog pings."""

    def __init__(self) -> None:
        """No ping yet."""
        self.pings = 0

    def notify(self, **fields: object) -> None:
        """Count a watchdog ping."""
        self.pings += "watchdog" in fields


def test_a_blocked_reminders_loop_stops_the_watchdog_pings(site: Site) -> None:
    """While the reminders' event loop is stuck, the serving loop sends no watchdog ping."""
    watcher = Daemon(site.config, None)
    pings = _Pings()
    watcher.notifier = pings  # type: ignore[assignment]
    watcher.sender = SenderLoop()

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(watcher._watchdog(timedelta(seconds=0.1)))  # noqa: SLF001
        await asyncio.sleep(0.5)
        before = pings.pings
        # A blocking call on the reminders' loop, as a stuck send would be.
        watcher.sender._loop.call_soon_threadsafe(time.sleep, 1.5)  # noqa: SLF001
        await asyncio.sleep(0.3)
        during = pings.pings
        await asyncio.sleep(1.0)
        stuck = pings.pings - during
        await asyncio.sleep(0.5)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return before, stuck

    try:
        before, stuck = asyncio.run(scenario())
    finally:
        watcher.sender.close()
    assert before >= 2
    assert stuck == 0


def test_moving_the_state_folder_needs_a_restart(daemon: Running, root: Path) -> None:
    """A reload that moves state_dir is refused whole, naming the setting; nothing moves."""
    config = root / "config" / "eventwatch.toml"
    text = config.read_text()
    assert 'state_dir = "../state"' in text
    config.write_text(text.replace('state_dir = "../state"', 'state_dir = "../elsewhere"'))
    wait_for(lambda: daemon.get("/healthz").json()["last_reload_error"] is not None)
    error = daemon.get("/healthz").json()["last_reload_error"]
    assert "state_dir: " in error
    assert "restart to move it" in error
    code, _ = daemon.stop()
    assert code == 0
    assert not (root / "elsewhere").exists()


def _schema(folder: Path) -> int:
    """The schema version stored in ``folder``'s ledger."""
    with sqlite3.connect(folder / "eventwatch.db") as connection:
        return int(connection.execute("SELECT version FROM schema_version").fetchone()[0])


def _settings_on(state_dir: Path) -> Settings:
    """The shipped settings with ``state_dir`` as the state folder."""
    return inputs.load(SHIPPED_CONFIG, [f"state_dir={state_dir}"]).settings


class TestUpgradeBesideARunningDaemon:
    """Commands upgrade the ledger only while no daemon holds the state folder."""

    def test_plan_beside_a_running_daemon_leaves_an_older_ledger_alone(
        self, tmp_path: Path
    ) -> None:
        """While a daemon (of the older release) holds the folder, plan refuses: restart it."""
        version_2_ledger(tmp_path)
        held = StateLock(tmp_path)
        try:
            with pytest.raises(OperationError, match="a running eventwatch holds the state"):
                daemon_module.statuses(_settings_on(tmp_path))
        finally:
            held.close()
        assert _schema(tmp_path) == 2

    def test_plan_with_no_daemon_upgrades_and_reads(self, tmp_path: Path) -> None:
        """With the folder free, plan upgrades the older ledger and shows its statuses."""
        version_2_ledger(tmp_path)
        found = daemon_module.statuses(_settings_on(tmp_path))
        assert _schema(tmp_path) == SCHEMA_VERSION
        assert found["u|changed|4|a@example.org"] == "pending"

    def test_plan_with_no_ledger_yet_makes_none(self, tmp_path: Path) -> None:
        """A state folder without a ledger shows no statuses and stays empty."""
        assert daemon_module.statuses(_settings_on(tmp_path)) == {}
        assert list(tmp_path.iterdir()) == []

    def test_export_beside_a_running_daemon_leaves_an_older_ledger_alone(
        self, tmp_path: Path
    ) -> None:
        """export refuses an older ledger a daemon holds, before writing anything."""
        version_2_ledger(tmp_path / "state")
        loaded = inputs.load(SHIPPED_CONFIG, [f"state_dir={tmp_path / 'state'}"])
        held = StateLock(tmp_path / "state")
        try:
            with pytest.raises(OperationError, match="restart it"):
                export(loaded, tmp_path / "out")
        finally:
            held.close()
        assert _schema(tmp_path / "state") == 2
        assert not (tmp_path / "out").exists()


class TestMigrateLedger:
    """migrate_ledger: the state folder's SQLite ledger into PostgreSQL, with no daemon on it."""

    def test_a_daemon_on_the_state_folder_stops_it(
        self, tmp_path: Path, postgres_database: str
    ) -> None:
        """While the folder is held, nothing moves: the SQLite file stays at its schema."""
        version_2_ledger(tmp_path)
        held = StateLock(tmp_path)
        try:
            with pytest.raises(OperationError) as refused:
                daemon_module.migrate_ledger(_settings_on(tmp_path), postgres_database)
        finally:
            held.close()
        assert str(refused.value) == (
            f"{tmp_path}: an eventwatch is running on this state folder: stop it first"
        )
        assert _schema(tmp_path) == 2
        engine = sa.create_engine(postgres_database)
        with engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
        engine.dispose()

    def test_an_older_ledger_is_upgraded_then_moved(
        self, tmp_path: Path, postgres_database: str
    ) -> None:
        """A schema 2 ledger arrives with its notice's kind and SEQUENCE in their columns."""
        version_2_ledger(tmp_path)
        copied = daemon_module.migrate_ledger(_settings_on(tmp_path), postgres_database)
        assert copied == {"revisions": 0, "reminders": 2, "attempts": 0}
        assert _schema(tmp_path) == SCHEMA_VERSION
        moved = Ledger(postgres_database)
        notice = moved.rows()["u|changed|4|a@example.org"]
        assert (notice.kind, notice.offset, notice.sequence) == ("changed", None, 4)
        moved.close()


def test_export_on_a_shared_ledger_writes_nothing_there(
    tmp_path: Path, postgres_database: str
) -> None:
    """export of an edited folder on PostgreSQL reads the instances' revisions, stores none.

    The shared ledger is the running instances': a draft exported from another folder must
    change no SEQUENCE there, and record no calendar file.
    """
    url = f"database.url={postgres_database}"
    state = f"state_dir={tmp_path / 'state'}"
    ledger = Ledger(postgres_database)
    daemon_module.publish(inputs.load(SHIPPED_CONFIG, [state]), ledger, feeds.Renderer())
    before = ledger.revisions()
    ledger.close()
    draft = tmp_path / "draft"
    shutil.copytree(SHIPPED_CONFIG.parent.parent / "calendars", draft)
    path = draft / "nato-2026.toml"
    path.write_text(path.read_text().replace("Ankara, Türkiye", "Elsewhere"), encoding="utf-8")
    loaded = inputs.load(SHIPPED_CONFIG, [url, state, f"calendars_dir={draft}"])
    export(loaded, tmp_path / "out")
    assert b"Elsewhere" in (tmp_path / "out" / "all.ics").read_bytes()
    after = Ledger(postgres_database, upgrade=False)
    try:
        assert after.revisions() == before
        assert after.current("nato-2026", None)  # no calendar file recorded at all
    finally:
        after.close()
