"""The state database: revisions kept across opens, and its schema version guarded."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from eventwatch import ledger as ledger_module
from eventwatch import policy
from eventwatch.errors import OperationError, StateError
from eventwatch.ledger import DATABASE_FILE, SCHEMA_VERSION, Ledger, make_state_folder, url_for
from eventwatch.models import Calendar, ReminderPolicy
from eventwatch.policy import Status
from eventwatch.revisions import Revision

from .helpers import free_port, version_2_ledger

if TYPE_CHECKING:
    from pathlib import Path

    from eventwatch.policy import Reminder

WHEN = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each engine: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return url_for(make_state_folder(tmp_path / "state"))
    return str(request.getfixturevalue("postgres_database"))


def test_revisions_survive_reopening(url: str) -> None:
    """What one run saved, the next reads back exactly."""
    saved = [Revision(f"cal/e{n}@eventwatch", n, "m", "c", WHEN) for n in range(3)]
    first = Ledger(url)
    first.save_revisions(saved)
    first.close()
    second = Ledger(url)
    assert second.revisions() == {r.uid: r for r in saved}
    second.close()


def test_saving_replaces_by_uid(url: str) -> None:
    """A new revision of an event replaces the old one; others stay."""
    ledger = Ledger(url)
    ledger.save_revisions([Revision("a", 0, "m", "c", WHEN), Revision("b", 0, "m", "c", WHEN)])
    ledger.save_revisions([Revision("a", 1, "m2", "c2", WHEN)])
    assert {uid: r.sequence for uid, r in ledger.revisions().items()} == {"a": 1, "b": 0}
    ledger.close()


def test_many_revisions_in_one_save(url: str) -> None:
    """More revisions than SQLite allows parameters in one statement are saved."""
    ledger = Ledger(url)
    ledger.save_revisions([Revision(f"e{n}", 0, "m", "c", WHEN) for n in range(2345)])
    assert len(ledger.revisions()) == 2345
    ledger.close()


def test_newer_schema_is_refused(url: str) -> None:
    """A database from a newer eventwatch is not misread."""
    Ledger(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1}
        )
    engine.dispose()
    with pytest.raises(StateError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        Ledger(url)


def test_unwritable_state_folder_is_named(tmp_path: Path) -> None:
    """A state folder that cannot be created is reported with its path."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StateError, match="cannot create the state folder"):
        Ledger.in_folder(blocker / "state")


def _plan(
    start: date = date(2026, 7, 7), offsets: tuple[str, ...] = ("P7D", "P1D")
) -> list[Reminder]:
    """The reminders of one all-day event on ``start`` for one recipient."""
    cal = Calendar.model_validate(
        {
            "id": "cal",
            "name": "Cal",
            "timezone": "Europe/Istanbul",
            "reminders": {"offsets": list(offsets), "recipients": [{"address": "ops@example.org"}]},
            "events": [{"id": "summit", "title": "Summit", "start": start}],
        },
    )
    return policy.reminders((cal,), ReminderPolicy())


EARLY = datetime(2026, 6, 1, tzinfo=UTC)


def _contents(folder: Path) -> tuple[object, ...]:
    """The schema version and every reminder row, as stored (opening may switch the journal)."""
    with sqlite3.connect(folder / DATABASE_FILE) as connection:
        version = connection.execute("SELECT version FROM schema_version").fetchall()
        rows = connection.execute("SELECT * FROM reminders ORDER BY key").fetchall()
    return version, rows


class TestReminders:
    """The reminder rows: reconciling, claiming, recording."""

    def test_reconcile_inserts_the_plan_as_pending(self, url: str) -> None:
        """Every planned reminder becomes one pending row with its due instant."""
        ledger = Ledger(url)
        result = ledger.reconcile(policy.follow(_plan()), EARLY)
        assert (result.inserted, result.cancelled) == (2, 0)
        rows = ledger.rows()
        assert sorted((r.offset, r.due, r.status) for r in rows.values()) == [
            ("P1D", datetime(2026, 7, 6, 6, tzinfo=UTC), Status.PENDING),
            ("P7D", datetime(2026, 6, 30, 6, tzinfo=UTC), Status.PENDING),
        ]
        assert ledger.reconcile(policy.follow(_plan()), EARLY).inserted == 0  # idempotent
        ledger.close()

    def test_moved_event_cancels_pending_and_plans_anew(self, url: str) -> None:
        """Moving the event cancels its pending reminders and adds ones at the new time."""
        ledger = Ledger(url)
        ledger.reconcile(policy.follow(_plan()), EARLY)
        result = ledger.reconcile(policy.follow(_plan(start=date(2026, 7, 14))), EARLY)
        assert (result.inserted, result.cancelled) == (2, 2)
        statuses = sorted((r.due.date(), r.status) for r in ledger.rows().values())
        assert statuses == [
            (date(2026, 6, 30), Status.CANCELLED),
            (date(2026, 7, 6), Status.CANCELLED),
            (date(2026, 7, 7), Status.PENDING),
            (date(2026, 7, 13), Status.PENDING),
        ]
        ledger.close()

    def test_sent_rows_are_never_touched(self, url: str) -> None:
        """A sent reminder stays sent when its event disappears from the plan."""
        ledger = Ledger(url)
        ledger.reconcile(policy.follow(_plan()), EARLY)
        (claimed,) = ledger.claim_due(datetime(2026, 6, 30, 6, tzinfo=UTC)).rows
        ledger.mark_sent(claimed.key, "<id@eventwatch>", datetime(2026, 6, 30, 6, tzinfo=UTC))
        ledger.reconcile(policy.follow([]), EARLY)
        row = ledger.rows()[claimed.key]
        assert (row.status, row.message_id) == (Status.SENT, "<id@eventwatch>")
        ledger.close()

    def test_cancelled_comes_back_when_the_event_moves_back(self, url: str) -> None:
        """Moving an event back revives its cancelled reminders that are not yet due."""
        ledger = Ledger(url)
        ledger.reconcile(policy.follow(_plan()), EARLY)
        ledger.reconcile(policy.follow(_plan(start=date(2026, 7, 14))), EARLY)
        result = ledger.reconcile(policy.follow(_plan()), EARLY)
        assert (result.revived, result.cancelled) == (2, 2)
        ledger.close()

    def test_claim_takes_only_due_rows_once(self, url: str) -> None:
        """A due row is claimed once, with its attempt counted; later rows wait."""
        ledger = Ledger(url)
        ledger.reconcile(policy.follow(_plan()), EARLY)
        at = datetime(2026, 6, 30, 6, tzinfo=UTC)
        (claimed,) = ledger.claim_due(at).rows
        assert (claimed.offset, claimed.status, claimed.attempts) == ("P7D", Status.SENDING, 1)
        assert ledger.claim_due(at).rows == []
        assert ledger.rows()[claimed.key].status is Status.SENDING
        assert ledger.requeue_in_flight() == 1  # what a crash left sending is pending again
        assert ledger.rows()[claimed.key].status is Status.PENDING
        ledger.close()

    def test_retry_waits_for_its_time(self, url: str) -> None:
        """A retried row is pending again but claimable only from its next attempt."""
        ledger = Ledger(url)
        ledger.reconcile(policy.follow(_plan(offsets=("P7D",))), EARLY)
        at = datetime(2026, 6, 30, 6, tzinfo=UTC)
        (claimed,) = ledger.claim_due(at).rows
        retry_at = at + timedelta(minutes=1)
        ledger.mark_retry(claimed.key, "451 try later", retry_at)
        assert ledger.next_due() == retry_at
        assert ledger.claim_due(at + timedelta(seconds=30)).rows == []
        (again,) = ledger.claim_due(retry_at).rows
        assert (again.attempts, again.last_error) == (2, "451 try later")
        ledger.close()

    def test_failed_and_skipped_are_final(self, url: str) -> None:
        """Failed and skipped rows are never claimed and do not count as next due."""
        ledger = Ledger(url)
        ledger.reconcile(policy.follow(_plan()), EARLY)
        first, second = ledger.claim_due(datetime(2026, 7, 7, tzinfo=UTC)).rows
        assert ledger.mark_failed(first.key, "550 no such user")
        assert ledger.mark_skipped(second.key, "due 7 h before eventwatch ran")
        assert ledger.next_due() is None
        assert ledger.claim_due(datetime(2027, 1, 1, tzinfo=UTC)).rows == []
        ledger.close()

    def test_version_1_database_is_upgraded(self, tmp_path: Path) -> None:
        """A database of schema 1 (revisions only) gains the reminders table and keeps its rows."""
        engine = sa.create_engine(f"sqlite:///{tmp_path / DATABASE_FILE}")
        with engine.begin() as connection:
            connection.execute(sa.text("CREATE TABLE schema_version (version INTEGER NOT NULL)"))
            connection.execute(sa.text("INSERT INTO schema_version VALUES (1)"))
            connection.execute(
                sa.text(
                    "CREATE TABLE revisions (uid VARCHAR(300) PRIMARY KEY, sequence INTEGER "
                    "NOT NULL, major VARCHAR(64) NOT NULL, content VARCHAR(64) NOT NULL, "
                    "modified BIGINT NOT NULL)",
                ),
            )
            connection.execute(sa.text("INSERT INTO revisions VALUES ('a', 3, 'm', 'c', 0)"))
        engine.dispose()
        ledger = Ledger.in_folder(tmp_path)
        assert ledger.revisions()["a"].sequence == 3
        assert ledger.reconcile(policy.follow(_plan()), EARLY).inserted == 2
        ledger.close()
        engine = sa.create_engine(f"sqlite:///{tmp_path / DATABASE_FILE}")
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version FROM schema_version")).scalar()
            assert version == SCHEMA_VERSION
        engine.dispose()

    def test_version_2_notices_get_their_kind_and_sequence(self, tmp_path: Path) -> None:
        """Schema 2 kept a notice's kind in ``offset``; upgraded, it has kind and SEQUENCE."""
        version_2_ledger(tmp_path)
        ledger = Ledger.in_folder(tmp_path)
        rows = ledger.rows()
        ledger.close()
        reminder = rows["u|20260707T060000Z|P1D|a@example.org"]
        notice = rows["u|changed|4|a@example.org"]
        assert (reminder.kind, reminder.offset, reminder.sequence) == ("reminder", "P1D", None)
        assert (reminder.status, reminder.message_id) == (Status.SENT, "<m@x>")
        assert (notice.kind, notice.offset, notice.sequence) == ("changed", None, 4)
        assert notice.status is Status.PENDING

    def test_version_2_upgrade_is_all_or_nothing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A failure half-way through the upgrade leaves the schema 2 database as it was."""
        version_2_ledger(tmp_path)

        def fail(*_: object) -> None:
            raise RuntimeError("power cut")

        # The step after the old table is dropped: its rows exist only in the transaction.
        monkeypatch.setattr(ledger_module._reminders, "create", fail)  # noqa: SLF001
        with pytest.raises(RuntimeError, match="power cut"):
            Ledger.in_folder(tmp_path)
        monkeypatch.undo()
        engine = sa.create_engine(f"sqlite:///{tmp_path / DATABASE_FILE}")
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT version FROM schema_version")).scalar() == 2
            kept = connection.execute(sa.text('SELECT key, "offset" FROM reminders')).all()
        engine.dispose()
        assert sorted(map(tuple, kept)) == [
            ("u|20260707T060000Z|P1D|a@example.org", "P1D"),
            ("u|changed|4|a@example.org", "changed"),
        ]
        ledger = Ledger.in_folder(tmp_path)
        assert ledger.rows()["u|changed|4|a@example.org"].sequence == 4
        ledger.close()

    def test_a_damaged_version_2_ledger_is_refused_and_kept_at_version_2(
        self, tmp_path: Path
    ) -> None:
        """A schema 2 ledger refused as damaged is not upgraded first: its file stays as it was."""
        version_2_ledger(tmp_path, status="lost")
        before = _contents(tmp_path)
        with pytest.raises(StateError, match=r"a status eventwatch does not know: \['lost'\]"):
            Ledger.in_folder(tmp_path)
        assert _contents(tmp_path) == before

    @pytest.mark.parametrize("sequence", ["x", "", "²", "99999999999999999999"])
    def test_a_version_2_notice_key_eventwatch_did_not_write_is_refused(
        self, tmp_path: Path, sequence: str
    ) -> None:
        """A notice key whose SEQUENCE is not a number is one error naming the file, no upgrade."""
        version_2_ledger(tmp_path, notice=f"u|changed|{sequence}|a@example.org")
        before = _contents(tmp_path)
        with pytest.raises(StateError, match="a notice's key is not as eventwatch writes it"):
            Ledger.in_folder(tmp_path)
        assert _contents(tmp_path) == before

    def test_a_version_2_notice_to_an_address_with_a_bar_keeps_its_sequence(
        self, tmp_path: Path
    ) -> None:
        """A ``|`` in the address (allowed in a local part) does not hide the SEQUENCE."""
        version_2_ledger(tmp_path, notice="u|changed|7|a|b@example.org")
        ledger = Ledger.in_folder(tmp_path)
        assert ledger.rows()["u|changed|7|a|b@example.org"].sequence == 7
        ledger.close()

    def test_without_upgrade_an_older_ledger_is_left_alone(self, tmp_path: Path) -> None:
        """Opened without ``upgrade``, a schema 2 ledger is refused: restart the daemon."""
        version_2_ledger(tmp_path)
        before = _contents(tmp_path)
        with pytest.raises(OperationError, match="restart it"):
            Ledger.in_folder(tmp_path, upgrade=False)
        assert _contents(tmp_path) == before

    def test_a_ledger_another_process_writes_is_busy_not_damaged(self, tmp_path: Path) -> None:
        """An upgrade that waits past the busy timeout is a temporary failure, not damage."""
        version_2_ledger(tmp_path)
        other = sqlite3.connect(tmp_path / DATABASE_FILE, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # as a daemon upgrading a large ledger holds it
        try:
            with pytest.raises(OperationError, match="cannot open the state database now"):
                Ledger.in_folder(tmp_path)
        finally:
            other.execute("ROLLBACK")
            other.close()


def test_instances_starting_together_create_the_schema_once(postgres_database: str) -> None:
    """Four instances opening one new PostgreSQL database at once: one schema, one version."""
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        ledgers = list(pool.map(lambda _: Ledger(postgres_database), range(4)))
    for ledger in ledgers:
        ledger.close()
    engine = sa.create_engine(postgres_database)
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version FROM schema_version")).all()
    engine.dispose()
    assert [tuple(v) for v in versions] == [(SCHEMA_VERSION,)]


def _crowd(recipients: int, start: date = date(2026, 7, 7)) -> list[Reminder]:
    """The one-day-ahead reminders of one all-day event for ``recipients`` recipients."""
    cal = Calendar.model_validate(
        {
            "id": "cal",
            "name": "Cal",
            "timezone": "Europe/Istanbul",
            "reminders": {
                "offsets": ["P1D"],
                "recipients": [{"address": f"r{n}@example.org"} for n in range(recipients)],
            },
            "events": [{"id": "summit", "title": "Summit", "start": start}],
        },
    )
    return policy.reminders((cal,), ReminderPolicy())


DUE = datetime(2026, 7, 6, 6, tzinfo=UTC)
"""When the reminders of ``_crowd`` are due."""


def _seed(url: str, plan: list[Reminder]) -> None:
    """The ledger at ``url`` with ``plan`` reconciled into it."""
    ledger = Ledger(url)
    ledger.reconcile(policy.follow(plan), EARLY)
    ledger.close()


def _lease_until(url: str, key: str) -> int | None:
    """The stored end of the lease of ``key``, in seconds."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            query = sa.text("SELECT lease_until FROM reminders WHERE key = :key")
            found: int | None = connection.execute(query, {"key": key}).scalar()
            return found
    finally:
        engine.dispose()


class TestClaims:
    """Claims by several instances on one database, each held for a lease."""

    def test_instances_claiming_at_once_never_claim_one_row_twice(self, url: str) -> None:
        """Three instances claiming 300 due rows in small batches at once share them out."""
        _seed(url, _crowd(300))
        ledgers = [Ledger(url, instance=name) for name in "abc"]

        def drain(ledger: Ledger) -> list[str]:
            taken: list[str] = []
            while rows := ledger.claim_due(DUE, limit=7).rows:
                taken += [r.key for r in rows]
            return taken

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            shares = list(pool.map(drain, ledgers))
        everything = [key for share in shares for key in share]
        assert sorted(everything) == sorted(ledgers[0].rows())
        assert len(everything) == len(set(everything)) == 300
        for ledger in ledgers:
            ledger.close()

    def test_a_claim_takes_at_most_its_limit_soonest_first(self, url: str) -> None:
        """A claim of 5 out of 12 due takes 5, the earliest due first, then by key."""
        ledger = Ledger(url)
        ledger.reconcile(policy.follow(_crowd(10) + _plan()), EARLY)
        claim = ledger.claim_due(DUE, limit=5)
        assert [r.due for r in claim.rows] == [datetime(2026, 6, 30, 6, tzinfo=UTC)] + [DUE] * 4
        assert [r.key for r in claim.rows[1:]] == sorted(r.key for r in claim.rows[1:])
        assert claim.now == DUE
        ledger.close()

    def test_an_expired_lease_is_taken_over_by_another_instance(self, url: str) -> None:
        """Until the lease ends no one else claims the row; then another does, as attempt 2."""
        _seed(url, _crowd(1))
        first = Ledger(url, instance="a", lease=timedelta(minutes=2))
        other = Ledger(url, instance="b")
        (claimed,) = first.claim_due(DUE).rows
        assert other.claim_due(DUE + timedelta(minutes=2)).rows == []  # the lease's last second
        (taken,) = other.claim_due(DUE + timedelta(minutes=2, seconds=1)).rows
        assert (taken.key, taken.attempts, taken.status) == (claimed.key, 2, Status.SENDING)
        assert [(a.number, a.instance) for a in other.attempts(claimed.key)] == [
            (1, "a"),
            (2, "b"),
        ]
        first.close()
        other.close()

    def test_an_instance_whose_row_was_taken_over_cannot_settle_it(self, url: str) -> None:
        """After a takeover the first's retry is refused, its send recorded; each attempt kept."""
        _seed(url, _crowd(1))
        first = Ledger(url, instance="a")
        other = Ledger(url, instance="b")
        (claimed,) = first.claim_due(DUE).rows
        other.claim_due(DUE + timedelta(hours=1))
        assert not first.mark_retry(claimed.key, "451 later", DUE + timedelta(hours=2))
        assert first.rows()[claimed.key].status is Status.SENDING
        assert first.mark_sent(claimed.key, "<id@x>", DUE)  # the server said 250: it went out
        assert not other.mark_sent(claimed.key, "<id@x>", DUE)  # recorded once
        assert other.rows()[claimed.key].status is Status.SENT
        assert [(a.instance, a.result) for a in other.attempts(claimed.key)] == [
            ("a", "sent"),
            ("b", "sent"),
        ]
        first.close()
        other.close()

    def test_extending_keeps_the_rows_this_instance_sends(self, url: str) -> None:
        """Renewed leases run from the database's now; rows not sending are left alone."""
        ledger = Ledger(url, instance="a", lease=timedelta(minutes=2))
        ledger.reconcile(policy.follow(_crowd(2)), EARLY)
        first, second = ledger.claim_due(DUE).rows
        ledger.mark_sent(second.key, "<id@x>", DUE)
        before = ledger.now()
        assert ledger.extend_leases() == 1
        held = _lease_until(url, first.key)
        assert held is not None
        assert held >= int(before.timestamp()) + 120
        assert _lease_until(url, second.key) is None
        ledger.close()

    def test_a_reminder_past_its_lease_is_next_due_then(self, url: str) -> None:
        """A row left sending wants attention when its lease runs out."""
        ledger = Ledger(url, instance="a", lease=timedelta(minutes=5))
        ledger.reconcile(policy.follow(_crowd(1)), EARLY)
        ledger.claim_due(DUE)
        assert ledger.next_due() == DUE + timedelta(minutes=5)
        ledger.close()

    def test_the_database_clock_decides_when_no_instant_is_given(self, url: str) -> None:
        """Without an instant, a claim goes by the database's: due 2 s ago yes, in 60 s not."""
        _seed(url, _crowd(2))
        ledger = Ledger(url)
        now = ledger.now()
        assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)  # this host is the server's
        past, future = sorted(ledger.rows())
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            dues = {past: now - timedelta(seconds=2), future: now + timedelta(seconds=60)}
            for key, due in dues.items():
                connection.execute(
                    sa.text("UPDATE reminders SET due = :due WHERE key = :key"),
                    {"due": int(due.timestamp()), "key": key},
                )
        engine.dispose()
        claim = ledger.claim_due()
        assert [r.key for r in claim.rows] == [past]
        assert now <= claim.now < now + timedelta(seconds=5)
        ledger.close()

    def test_every_claim_is_recorded_with_its_instance_and_result(self, url: str) -> None:
        """A retry then a send: two attempts, each with its instance, result and instant."""
        _seed(url, _crowd(1))
        first = Ledger(url, instance="host-a-1")
        other = Ledger(url, instance="host-b-7")
        (row,) = first.claim_due(DUE).rows
        first.mark_retry(row.key, "451 later", DUE + timedelta(minutes=1))
        other.claim_due(DUE + timedelta(minutes=1))
        other.mark_sent(row.key, "<id@x>", DUE + timedelta(minutes=1))
        attempts = first.attempts(row.key)
        assert [(a.number, a.instance, a.result, a.claimed_at) for a in attempts] == [
            (1, "host-a-1", "retry", DUE),
            (2, "host-b-7", "sent", DUE + timedelta(minutes=1)),
        ]
        first.close()
        other.close()

    def test_reconciling_at_once_writes_each_row_once(self, url: str) -> None:
        """Four instances reconciling one plan at the same moment add each reminder once."""
        plan = _crowd(200)
        ledgers = [Ledger(url, instance=str(n)) for n in range(4)]
        gate = threading.Barrier(4)

        def reconcile(ledger: Ledger) -> None:
            gate.wait()
            ledger.reconcile(policy.follow(plan), EARLY)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(reconcile, ledgers))
        assert sorted(ledgers[0].rows()) == sorted(r.key for r in plan)
        for ledger in ledgers:
            ledger.close()

    def test_a_revision_saved_by_instances_at_once_is_stored_once(self, url: str) -> None:
        """Instances saving the same new revisions at once all succeed; one copy is kept."""
        revisions = [Revision(f"uid-{n}", 0, "m", "c", WHEN) for n in range(300)]
        ledgers = [Ledger(url, instance=str(n)) for n in range(4)]
        gate = threading.Barrier(4)

        def save(ledger: Ledger) -> None:
            gate.wait()
            ledger.save_revisions(revisions)

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(save, ledgers))
        assert ledgers[0].revisions() == {r.uid: r for r in revisions}
        for ledger in ledgers:
            ledger.close()

    def test_a_version_3_ledger_gains_the_claim_columns(self, url: str) -> None:
        """A schema 3 ledger is upgraded with its rows as they were and empty leases."""
        ledger = Ledger(url)
        ledger.reconcile(policy.follow(_plan()), EARLY)
        before = ledger.rows()
        ledger.close()
        engine = sa.create_engine(url)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP TABLE attempts"))
            for column in ("claimed_by", "lease_until"):
                connection.execute(sa.text(f"ALTER TABLE reminders DROP COLUMN {column}"))
            connection.execute(sa.text("UPDATE schema_version SET version = 3"))
        engine.dispose()
        upgraded = Ledger(url, instance="a")
        assert upgraded.rows() == before
        (claimed, _) = upgraded.claim_due(datetime(2026, 7, 7, tzinfo=UTC)).rows
        assert [a.instance for a in upgraded.attempts(claimed.key)] == ["a"]
        upgraded.close()
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            version = connection.execute(sa.text("SELECT version FROM schema_version")).scalar()
        engine.dispose()
        assert version == SCHEMA_VERSION == 4


class TestDeferring:
    """Instances holding different files of one calendar: the newer file decides."""

    V1, V2 = "1" * 64, "2" * 64

    def test_the_first_file_seen_is_the_newest(self, postgres_database: str) -> None:
        """A calendar no instance has shown yet is nobody's to defer to."""
        ledger = Ledger(postgres_database)
        assert ledger.deferred({"cal": self.V1}) == set()
        ledger.close()

    def test_an_older_file_defers_to_a_newer_one_however_long(self, postgres_database: str) -> None:
        """An older file defers until it changes here, a day on as a minute: no rollback.

        A host that missed a deploy keeps its older file; however late it reloads, it never
        takes that file for the newest.
        """
        first = Ledger(postgres_database, instance="a")
        other = Ledger(postgres_database, instance="b")
        assert first.deferred({"cal": self.V1, "x": self.V1}, now=EARLY) == set()
        edited = {"cal": self.V2, "x": self.V1}
        assert other.deferred(edited, {"cal"}, EARLY + timedelta(minutes=1)) == set()
        for later in (timedelta(minutes=2), timedelta(days=1)):
            assert first.deferred({"cal": self.V1, "x": self.V1}, now=EARLY + later) == {"cal"}
        assert other.deferred(edited, now=EARLY + timedelta(days=1)) == set()
        assert first.deferred(edited, {"cal"}, EARLY + timedelta(days=1)) == set()
        first.close()
        other.close()

    def test_a_change_seen_back_to_an_earlier_file_is_the_newest(
        self, postgres_database: str
    ) -> None:
        """An instance that sees its file change back to an earlier one makes that the newest."""
        ledger = Ledger(postgres_database)
        ledger.deferred({"cal": self.V1}, now=EARLY)
        ledger.deferred({"cal": self.V2}, {"cal"}, EARLY + timedelta(minutes=1))
        assert ledger.deferred({"cal": self.V1}, {"cal"}, EARLY + timedelta(minutes=2)) == set()
        ledger.close()

    def test_one_sqlite_instance_never_defers(self, tmp_path: Path) -> None:
        """SQLite has one instance: no other can hold a newer file."""
        ledger = Ledger.in_folder(tmp_path)
        ledger.deferred({"cal": self.V1}, {"cal"}, EARLY)
        assert ledger.deferred({"cal": self.V2}, now=EARLY + timedelta(minutes=1)) == set()
        ledger.close()

    def test_a_calendar_another_instance_has_and_this_one_lacks_is_deferred(
        self, postgres_database: str
    ) -> None:
        """A calendar new on another instance is not this one's to cancel, until it has it."""
        first = Ledger(postgres_database, instance="a")
        other = Ledger(postgres_database, instance="b")
        assert other.deferred({"cal": self.V1, "new": self.V2}, now=EARLY) == set()
        assert first.deferred({"cal": self.V1}, now=EARLY + timedelta(days=1)) == {"new"}
        arrived = {"cal": self.V1, "new": self.V2}
        assert first.deferred(arrived, {"new"}, EARLY + timedelta(days=1)) == set()
        first.close()
        other.close()

    def test_a_calendar_seen_removed_is_nobodys_to_defer_to(self, postgres_database: str) -> None:
        """Once an instance saw a file go, one that lacks it too decides its rows again."""
        first = Ledger(postgres_database, instance="a")
        other = Ledger(postgres_database, instance="b")
        other.deferred({"cal": self.V1, "gone": self.V2}, now=EARLY)
        other.deferred({"cal": self.V1}, {"gone"}, EARLY + timedelta(seconds=1))
        assert first.deferred({"cal": self.V1}, now=EARLY + timedelta(seconds=2)) == set()
        assert first.current("gone", None)
        first.close()
        other.close()

    def test_only_the_newest_file_decides_a_calendars_rows(self, postgres_database: str) -> None:
        """``current``: the newest file's plan decides; an older one or none does not."""
        ledger = Ledger(postgres_database)
        assert ledger.current("cal", self.V1)  # nobody has read any file of it yet
        ledger.deferred({"cal": self.V1}, now=EARLY)
        ledger.deferred({"cal": self.V2}, {"cal"}, EARLY + timedelta(seconds=1))
        assert ledger.current("cal", self.V2)
        assert not ledger.current("cal", self.V1)
        assert not ledger.current("cal", None)
        ledger.close()

    def test_a_released_row_is_due_again_its_attempt_not_counted(self, url: str) -> None:
        """Given back, a row is pending and due at once, as if never claimed; recorded so."""
        _seed(url, _crowd(1))
        ledger = Ledger(url, instance="a")
        (row,) = ledger.claim_due(DUE).rows
        assert ledger.release(row.key)
        (again,) = ledger.claim_due(DUE).rows
        assert (again.key, again.attempts) == (row.key, 1)
        assert [a.result for a in ledger.attempts(row.key)] == ["released", None]
        ledger.close()

    def test_rows_of_a_deferred_calendar_are_neither_claimed_nor_due(self, url: str) -> None:
        """Claims and the next due instant leave a deferred calendar's rows to the others."""
        _seed(url, _crowd(2) + _plan())  # all of calendar "cal"; a bare LIKE "c_l%" matches it
        ledger = Ledger(url)
        assert ledger.claim_due(DUE, deferred={"cal"}).rows == []
        assert ledger.next_due({"cal"}) is None
        assert ledger.next_due({"ca%"}) == datetime(2026, 6, 30, 6, tzinfo=UTC)
        assert len(ledger.claim_due(DUE, deferred={"c_l"}).rows) == 4  # all, none deferred
        ledger.close()


@pytest.mark.parametrize(("query", "timeout"), [("", "30000"), ("?tcp_user_timeout=5000", "5000")])
def test_connection_options_in_the_url_are_the_admins(
    postgres_database: str, query: str, timeout: str
) -> None:
    """libpq gets eventwatch's TCP timeout, unless the URL gives one: then the URL's."""
    ledger = Ledger(postgres_database + query)
    try:
        engine = ledger._engine  # noqa: SLF001 - what the driver was given is the point here
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            parameters = driver.info.get_parameters()
    finally:
        ledger.close()
    assert (parameters["tcp_user_timeout"], parameters["keepalives_idle"]) == (timeout, "10")


def test_a_shared_database_gives_back_only_this_instances_claims(postgres_database: str) -> None:
    """At a stop, an instance on PostgreSQL requeues its own claims, never another's."""
    _seed(postgres_database, _crowd(4))
    mine = Ledger(postgres_database, instance="a")
    theirs = Ledger(postgres_database, instance="b")
    mine.claim_due(DUE, limit=1)
    theirs.claim_due(DUE, limit=3)
    assert mine.requeue_in_flight() == 1
    assert mine.counts()["sending"] == 3
    mine.close()
    theirs.close()


def test_a_sqlite_ledger_gives_back_every_claim(tmp_path: Path) -> None:
    """SQLite has one instance (the state lock): whatever is left sending is requeued."""
    url = url_for(make_state_folder(tmp_path))
    _seed(url, _crowd(4))
    gone = Ledger(url, instance="gone-1234")
    gone.claim_due(DUE, limit=3)
    gone.close()
    started = Ledger(url, instance="new-5678")
    assert started.requeue_in_flight() == 3
    started.close()


def _history(url: str) -> Ledger:
    """A ledger at ``url`` with a row in every status, notices, revisions and attempts.

    Of eight reminders, due at ``DUE``: one sent, one waiting to retry, one failed, one
    skipped, one left ``sending`` (its daemon was killed), one pending, two cancelled. One
    change notice was sent, another is pending.
    """
    ledger = Ledger(url, instance="old-host-1")
    crowd = _crowd(8)
    event = crowd[0].event
    ledger.save_revisions(
        [Revision(event.uid, 2, "m", "c", WHEN), Revision("x", 0, "m", "c", WHEN)]
    )
    ledger.reconcile(policy.follow(crowd), EARLY)
    before = DUE - timedelta(days=2)
    ledger.add([policy.notice(event, policy.Kind.CHANGED, 1, "r0@example.org", before, {})])
    (told,) = ledger.claim_due(before).rows
    ledger.mark_sent(told.key, "<notice@eventwatch>", before)
    ledger.add([policy.notice(event, policy.Kind.CANCELLED, 2, "r0@example.org", DUE, {})])
    sent, retry, failed, skipped, _ = ledger.claim_due(DUE, limit=5).rows
    ledger.mark_sent(sent.key, "<sent@eventwatch>", DUE)
    ledger.mark_retry(retry.key, "451 try later", DUE + timedelta(minutes=1))
    ledger.mark_failed(failed.key, "550 no such user")
    ledger.mark_skipped(skipped.key, "due 7 h before eventwatch ran")
    kept = [r for r in crowd if r.address not in {"r6@example.org", "r7@example.org"}]
    ledger.reconcile(policy.follow(kept), EARLY)
    return ledger


def _moved(rows: dict[str, policy.Row]) -> dict[str, policy.Row]:
    """``rows`` as a move delivers them: a row left ``sending`` arrives pending."""
    return {
        key: dataclasses.replace(row, status=Status.PENDING)
        if row.status is Status.SENDING
        else row
        for key, row in rows.items()
    }


class TestCopyInto:
    """Moving a SQLite ledger into PostgreSQL: everything, once, into an empty database."""

    def test_every_row_arrives_field_for_field(
        self, tmp_path: Path, postgres_database: str
    ) -> None:
        """Revisions, reminders, notices and attempts in PostgreSQL read back as in SQLite."""
        source = _history(url_for(make_state_folder(tmp_path)))
        target = Ledger(postgres_database)
        counts = source.copy_into(target)
        rows = source.rows()
        assert sorted(r.status for r in rows.values()) == sorted(
            ["sent", "sent", "pending", "pending", "pending", "sending", "failed", "skipped",
             "cancelled", "cancelled"]
        )  # fmt: skip
        assert counts == {"revisions": 2, "reminders": 10, "attempts": 6}
        assert target.rows() == _moved(rows)
        assert target.revisions() == source.revisions()
        assert {k: target.attempts(k) for k in rows} == {k: source.attempts(k) for k in rows}
        source.close()
        target.close()

    def test_every_column_arrives_as_stored(self, tmp_path: Path, postgres_database: str) -> None:
        """Each table's every column, claims and settling instants too, is stored as in SQLite."""
        url = url_for(make_state_folder(tmp_path))
        source = _history(url)
        target = Ledger(postgres_database)
        source.copy_into(target)
        source.close()
        target.close()
        expected = _stored(url)
        expected["reminders"] = [
            row | {"status": "pending", "lease_until": None} if row["status"] == "sending" else row
            for row in expected["reminders"]
        ]
        assert _stored(postgres_database) == expected

    def test_a_reminder_left_sending_arrives_pending_for_any_instance(
        self, tmp_path: Path, postgres_database: str
    ) -> None:
        """What a killed daemon left sending is claimed by the first instance on PostgreSQL."""
        source = _history(url_for(make_state_folder(tmp_path)))
        (left,) = [r for r in source.rows().values() if r.status is Status.SENDING]
        target = Ledger(postgres_database, instance="new-host-1")
        source.copy_into(target)
        assert _lease_until(postgres_database, left.key) is None
        claimed = target.claim_due(DUE).rows
        assert left.key in [r.key for r in claimed]
        assert [a.instance for a in target.attempts(left.key)] == ["old-host-1", "new-host-1"]
        assert source.rows()[left.key].status is Status.SENDING  # the SQLite file is as it was
        source.close()
        target.close()

    def test_a_database_that_holds_rows_is_refused_and_left_as_it_was(
        self, tmp_path: Path, postgres_database: str
    ) -> None:
        """A target with a single row is never merged into: one line naming it, password masked."""
        source = _history(url_for(make_state_folder(tmp_path)))
        _seed(postgres_database, _crowd(1))
        before = _stored(postgres_database)
        with_password = postgres_database.replace("eventwatch@", "eventwatch:hunter2@")
        target = Ledger(with_password)  # the test server trusts any password
        with pytest.raises(OperationError) as refused:
            source.copy_into(target)
        message = str(refused.value)
        assert message == (
            f"{postgres_database.replace('eventwatch@', 'eventwatch:***@')}: the database already "
            "holds 1 reminder: a ledger is moved only into an empty "
            "database, never merged into one; name an empty one"
        )
        assert _stored(postgres_database) == before
        source.close()
        target.close()


def _stored(url: str) -> dict[str, list[dict[str, object]]]:
    """Every row of the three tables at ``url``, all columns, in key order."""
    engine = sa.create_engine(url)
    found: dict[str, list[dict[str, object]]] = {}
    try:
        with engine.connect() as connection:
            for name, order in (
                ("revisions", "uid"),
                ("reminders", "key"),
                ("attempts", "key, number"),
            ):
                query = sa.text(f"SELECT * FROM {name} ORDER BY {order}")  # noqa: S608 - fixed names
                found[name] = [dict(row) for row in connection.execute(query).mappings()]
    finally:
        engine.dispose()
    return found


def test_a_database_that_refuses_eventwatch_says_so_on_one_line(postgres: str) -> None:
    """A server that answers but refuses (no such database) is named with its reason."""
    with pytest.raises(OperationError) as refused:
        Ledger(f"{postgres}/no_such_database")
    message = str(refused.value)
    assert "the database refuses the connection: " in message
    assert 'database "no_such_database" does not exist' in message
    assert "\n" not in message


def test_an_unreachable_database_is_named_so() -> None:
    """Nobody listening on the port: the database cannot be reached, on one line."""
    with pytest.raises(OperationError, match="the database cannot be reached: ") as found:
        Ledger(f"postgresql+psycopg://eventwatch@127.0.0.1:{free_port()}/x")
    assert "\n" not in str(found.value)
