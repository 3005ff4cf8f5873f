"""The only SQL: what eventwatch keeps in its state folder (SQLAlchemy Core).

One database, SQLite in the state folder by default. It holds the revision of every event a
feed has shown (so SEQUENCE and LAST-MODIFIED survive restarts); the reminder ledger joins it.
The schema carries a version number: an older database is upgraded in place, a newer one is
refused rather than misread.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from eventwatch.errors import OperationError, StateError
from eventwatch.models import uid_prefix
from eventwatch.policy import Changes, Kind, Row, Standing, Status
from eventwatch.revisions import Revision

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

    from eventwatch.settings import DatabaseSettings

SCHEMA_VERSION = 4
DATABASE_FILE = "eventwatch.db"
_CHUNK = 500

_metadata = sa.MetaData()

_schema = sa.Table(
    "schema_version",
    _metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

_revisions = sa.Table(
    "revisions",
    _metadata,
    sa.Column("uid", sa.String(300), primary_key=True),
    sa.Column("sequence", sa.Integer, nullable=False),
    sa.Column("major", sa.String(64), nullable=False),
    sa.Column("content", sa.String(64), nullable=False),
    # Whole seconds since the epoch, UTC: the same in every database, and what iCalendar keeps.
    sa.Column("modified", sa.BigInteger, nullable=False),
)


def _reminders_table(name: str, metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        # A reminder: event uid | event start (UTC) | offset | recipient (a moved event gets
        # new keys). A notice: event uid | kind | the SEQUENCE it announces | recipient.
        sa.Column("key", sa.String(700), primary_key=True),
        sa.Column("event_uid", sa.String(300), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False, server_default=Kind.REMINDER.value),
        sa.Column("offset", sa.String(40), nullable=True),  # a reminder's; None for a notice
        sa.Column("sequence", sa.Integer, nullable=True),  # a notice's; None for a reminder
        sa.Column("due", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt", sa.BigInteger, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("message_id", sa.String(300), nullable=True),
        sa.Column("sent_at", sa.BigInteger, nullable=True),
        # Who holds a ``sending`` row, and until when by the database's clock: once the lease
        # has run out, any instance may take the row over (a dead one never settles it).
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Index(f"{name}_by_status_due", "status", "due"),
    )


_reminders = _reminders_table("reminders", _metadata)

_V4_COLUMNS = ("claimed_by", "lease_until")
"""The columns schema 4 added to the reminders table."""

_versions = sa.Table(
    "calendar_versions",
    _metadata,
    # Each calendar file's contents as instances have read them, and when first: during a
    # rolling deploy an instance with an older file defers to those with the newer one.
    sa.Column("calendar", sa.String(100), primary_key=True),
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("first_seen", sa.BigInteger, nullable=False),
)

_REMOVED = ""
"""The digest recorded for a calendar whose file an instance saw removed."""


_attempts = sa.Table(
    "attempts",
    _metadata,
    # One row per claim of a reminder: which instance tried it, when, and what became of it
    # (no result: still sending, or the instance died and another took the row over).
    sa.Column("key", sa.String(700), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("instance", sa.String(200), nullable=False),
    sa.Column("claimed_at", sa.BigInteger, nullable=False),
    sa.Column("result", sa.String(10), nullable=True),
    sa.Column("settled_at", sa.BigInteger, nullable=True),
)

DEFAULT_LEASE = timedelta(minutes=2)
"""How long a claim holds a reminder unless extended: ``[database] claim_lease``."""

_POSTGRES_CONNECTION: dict[str, Any] = {
    "connect_timeout": 10,
    # A server gone without a word (a partition, a failover) is noticed within half a
    # minute, not after the kernel's two hours: a statement waiting on it fails instead.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    "tcp_user_timeout": 30_000,
    # No server-side prepared statements: they do not pass PgBouncer's transaction pooling
    # before its version 1.21, and eventwatch's statements are cheap to plan.
    "prepare_threshold": None,
}
"""What psycopg is given for every connection to PostgreSQL."""

_SCHEMA_LOCK = 0x6576_7477_6368  # "evtwch": the advisory lock key of schema changes
"""PostgreSQL advisory lock taken for the schema's creation or upgrade."""

_BUSY = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
"""SQLite's names for a database another connection holds: waiting longer may do."""

_V2_NOTICE_KINDS = ("changed", "cancelled")
"""Schema 2 wrote a notice's kind in its ``offset`` column."""


class Planned(Protocol):
    """What the ledger stores of a planned reminder or notice (``policy.Reminder`` is one)."""

    @property
    def key(self) -> str:
        """Its identity: the same reminder is planned with the same key."""

    @property
    def event_uid(self) -> str:
        """The uid of the event it is about."""

    @property
    def address(self) -> str:
        """The recipient's address, as written."""

    @property
    def kind(self) -> str:
        """A reminder, or the kind of notice."""

    @property
    def offset(self) -> object:
        """A reminder's offset before the start (written as text); None for a notice."""

    @property
    def sequence(self) -> int | None:
        """The SEQUENCE a notice announces; None for a reminder."""

    @property
    def due(self) -> datetime:
        """The instant it is due."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Reminders claimed for sending, and the database's instant they were claimed at."""

    now: datetime
    rows: list[Row]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One claim of a reminder by one instance, and its result once settled."""

    number: int
    instance: str
    claimed_at: datetime
    result: str | None


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What reconciling a plan changed."""

    inserted: int
    cancelled: int
    revived: int


_INSTANTS = (
    ("reminders", "due"),
    ("reminders", "next_attempt"),
    ("reminders", "sent_at"),
    ("reminders", "attempts"),
    ("reminders", "sequence"),
    ("reminders", "lease_until"),
    ("attempts", "number"),
    ("attempts", "claimed_at"),
    ("attempts", "settled_at"),
    ("calendar_versions", "first_seen"),
    ("revisions", "modified"),
    ("revisions", "sequence"),
)
"""Integer columns every reader converts: a value out of range would fail wherever read."""

_LAST_INSTANT = 253_402_300_799
"""9999-12-31 23:59:59 UTC in seconds: no instant (or count) eventwatch writes is larger."""


def _stamp(value: datetime) -> int:
    return int(value.timestamp())


def _pending_row(planned: Planned) -> dict[str, Any]:
    """The ledger row a newly planned reminder or notice starts as."""
    return {
        "key": planned.key,
        "event_uid": planned.event_uid,
        "recipient": planned.address,
        "kind": str(planned.kind),
        "offset": None if planned.offset is None else str(planned.offset),
        "sequence": planned.sequence,
        "due": _stamp(planned.due),
        "status": Status.PENDING.value,
        "attempts": 0,
    }


def _announced(key: str) -> int:
    """The SEQUENCE in a schema 2 notice key, ``uid|kind|sequence|recipient``.

    ``ValueError`` for a key eventwatch did not write.
    """
    _, _, sequence, _ = key.split("|", 3)  # an address may hold a "|"; a uid may not
    if not sequence.isascii() or not sequence.isdigit() or int(sequence) > _LAST_INSTANT:
        raise ValueError(sequence)
    return int(sequence)


def _kinds_apart(connection: sa.Connection) -> None:
    """Rebuild a schema 2 reminders table with its notices' kind and SEQUENCE in columns."""
    old = sa.Table("reminders", sa.MetaData(), autoload_with=connection)
    rows = [dict(found) for found in connection.execute(sa.select(old)).mappings()]
    old.drop(connection)
    _reminders.create(connection)
    for row in rows:
        if row["offset"] in _V2_NOTICE_KINDS:
            row["kind"], row["offset"] = row["offset"], None
            row["sequence"] = _announced(row["key"])
        else:
            row["kind"], row["sequence"] = Kind.REMINDER.value, None
    for start in range(0, len(rows), _CHUNK):
        connection.execute(_reminders.insert(), rows[start : start + _CHUNK])


def _first_line(error: object) -> str:
    """A driver's message on one line (libpq's add hints and SQL excerpts on lines of their own)."""
    return " ".join(str(error).split()) if error is not None else "unknown error"


def _not_of(calendars: Collection[str]) -> list[sa.ColumnElement[bool]]:
    """The condition that a reminder row is of none of ``calendars`` (none if there are none)."""
    return [
        sa.not_(_reminders.c.event_uid.startswith(uid_prefix(c), autoescape=True))
        for c in sorted(calendars)
    ]


def _revision(found: sa.Row[Any]) -> Revision:
    return Revision(
        uid=found.uid,
        sequence=found.sequence,
        major=found.major,
        content=found.content,
        modified=datetime.fromtimestamp(found.modified, tz=UTC),
    )


def _instant(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _row(found: sa.Row[Any]) -> Row:
    return Row(
        key=found.key,
        event_uid=found.event_uid,
        recipient=found.recipient,
        kind=Kind(found.kind),
        offset=found.offset,
        sequence=found.sequence,
        due=datetime.fromtimestamp(found.due, tz=UTC),
        status=Status(found.status),
        attempts=found.attempts,
        next_attempt=_instant(found.next_attempt),
        last_error=found.last_error,
        message_id=found.message_id,
        sent_at=_instant(found.sent_at),
    )


def _sqlite_pragmas(connection: Any, record: Any) -> None:  # noqa: ANN401 - a DB-API connection
    """Use WAL with synchronous=NORMAL, and wait for a busy database rather than fail.

    Every commit then survives a crash of the process (the guarantee the ledger needs) without
    an fsync per sent reminder; the busy timeout lets the daemon and a command (plan) share it.
    """
    del record
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_state_folder(state_dir: Path) -> Path:
    """``state_dir`` as messages name it, made if need be; ``StateError`` if it cannot be."""
    folder = Path(os.path.normpath(state_dir))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"{folder}: cannot create the state folder: {exc.strerror}") from exc
    return folder


def url_for(state_dir: Path) -> str:
    """The database URL of the SQLite file in ``state_dir``."""
    return f"sqlite:///{state_dir / DATABASE_FILE}"


class Ledger:
    """A connection to the state database; every method is one transaction."""

    def __init__(
        self,
        url: str,
        *,
        upgrade: bool = True,
        instance: str = "eventwatch",
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        """Connect to ``url``, create the schema or, with ``upgrade``, bring an older one up.

        Without ``upgrade`` an older schema is ``OperationError``: a daemon of the older
        eventwatch still runs on it and must be restarted (it would misread the new shape).
        A database another process holds past the busy timeout is ``OperationError`` too.
        ``instance`` names this process in the claims it makes, each held for ``lease``.
        """
        self.url = url
        self.instance = instance
        self.lease = lease
        backend = sa.make_url(url).get_backend_name()
        options: dict[str, Any] = {}
        if backend == "postgresql":
            # A server that does not answer must not hang a start or a pass for minutes. No
            # ping before each transaction (a round trip each): after a server restart the
            # first statement fails, SQLAlchemy drops the pool's connections, and the next
            # pass (a second later) connects afresh.
            given = sa.make_url(url).query  # what the admin wrote in the URL wins
            options = {
                "connect_args": {k: v for k, v in _POSTGRES_CONNECTION.items() if k not in given}
            }
        self._engine = sa.create_engine(url, **options)
        self.shared = self._engine.dialect.name == "postgresql"
        """Whether other instances may share the database (else a state lock excludes them)."""
        if self._engine.dialect.name == "sqlite":
            sa.event.listen(self._engine, "connect", _sqlite_pragmas)
        try:
            self._migrate(upgrade=upgrade)
        except (StateError, OperationError):
            self._engine.dispose()
            raise
        except sa.exc.OperationalError as exc:
            self._engine.dispose()
            if self.shared:  # a server down or refusing us: not damage to the database
                why = _first_line(exc.orig)
                # The server answered and said no (a password, a role, a database name):
                # libpq shows its FATAL. It may also pass (a server starting): exit 1 either
                # way, so that systemd tries again, with the server's reason in the journal.
                state = "refuses the connection" if "FATAL:" in why else "cannot be reached"
                raise OperationError(f"{self._where}: the database {state}: {why}") from exc
            if getattr(exc.orig, "sqlite_errorname", "") not in _BUSY:
                raise self._unusable(str(exc.orig)) from exc
            # Another process writes it (a daemon upgrading a large ledger): not damage.
            msg = f"{self._where}: cannot open the state database now: {exc.orig}; try again"
            raise OperationError(msg) from exc
        except SQLAlchemyError as exc:
            self._engine.dispose()
            cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
            raise self._unusable(str(cause)) from exc

    def _unusable(self, why: str) -> StateError:
        """The error for a database that cannot be used: what is wrong and what to do."""
        advice = (
            "check the database user's rights: eventwatch creates and upgrades its own tables"
            if self.shared
            else "it is kept as it is: restore it from a backup, or move it away to start an "
            "empty one"
        )
        return StateError(f"{self._where}: cannot use the state database: {_first_line(why)} "
                          f"({advice})")  # fmt: skip

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """A connection; a database failure becomes ``OperationError`` naming the database."""
        with self._failing(), self._engine.connect() as connection:
            yield connection

    @contextlib.contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        """A transaction, committed at the end; failures as for ``_connect``."""
        with self._failing(), self._engine.begin() as connection:
            yield connection

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
            raise OperationError(f"{self._where}: {cause}") from exc
        except ValueError as exc:  # a value no eventwatch wrote, such as an unknown status
            raise OperationError(f"{self._where}: {exc}") from exc

    def _verify(self, connection: sa.Connection) -> None:
        """Refuse a database that is damaged or not shaped as this eventwatch writes it."""
        if self._engine.dialect.name == "sqlite":
            found = connection.exec_driver_sql("PRAGMA quick_check").scalars().all()
            if found != ["ok"]:
                raise self._unusable(f"it is damaged ({'; '.join(map(str, found[:3]))})")
            for name, column in _INSTANTS:
                bad = connection.exec_driver_sql(
                    f'SELECT count(*) FROM {name} WHERE "{column}" IS NOT NULL AND '  # noqa: S608 - names from the schema above
                    f'(typeof("{column}") != \'integer\' OR "{column}" < 0 OR "{column}" > ?)',
                    (_LAST_INSTANT,),
                ).scalar()
                if bad:
                    why = f"{bad} {name}.{column} values are not instants eventwatch wrote"
                    raise self._unusable(why)
        columns = sa.inspect(connection)
        for table in _metadata.sorted_tables:
            have = {c["name"] for c in columns.get_columns(table.name)}
            missing = sorted({c.name for c in table.columns} - have)
            if missing:
                raise self._unusable(f"table {table.name} lacks column {', '.join(missing)}")
        statuses = set(connection.execute(sa.select(_reminders.c.status).distinct()).scalars())
        unknown = sorted(statuses - {s.value for s in Status})
        if unknown:
            raise self._unusable(f"reminders have a status eventwatch does not know: {unknown}")
        kinds = set(connection.execute(sa.select(_reminders.c.kind).distinct()).scalars())
        unknown = sorted(kinds - {k.value for k in Kind})
        if unknown:
            raise self._unusable(f"reminders have a kind eventwatch does not know: {unknown}")

    @classmethod
    def in_folder(cls, state_dir: Path, *, upgrade: bool = True) -> Ledger:
        """Open (creating it if need be) the SQLite database in ``state_dir``."""
        return cls(url_for(make_state_folder(state_dir)), upgrade=upgrade)

    @classmethod
    def of(cls, database: DatabaseSettings, state_dir: Path, *, upgrade: bool = True) -> Ledger:
        """The ledger the settings name: PostgreSQL at ``[database] url``, else SQLite.

        The password given apart from the URL (a file, a systemd credential) joins it here,
        in memory only; messages name the database without it.
        """
        if database.url is None:
            url = url_for(make_state_folder(state_dir))
        else:
            found = sa.make_url(database.url)
            if database.password is not None:
                found = found.set(password=database.password.get_secret_value())
            url = found.render_as_string(hide_password=False)
        return cls(
            url, upgrade=upgrade, instance=database.instance_name, lease=database.claim_lease
        )

    @property
    def _where(self) -> str:
        """The database as messages name it: the file, or the URL without its password."""
        url = sa.make_url(self.url)
        if url.get_backend_name() == "sqlite" and url.database:
            return os.path.normpath(url.database)
        return url.render_as_string(hide_password=True)

    def _migrate(self, *, upgrade: bool) -> None:
        """Create or upgrade the schema in one transaction: all of it happens, or none.

        The connection runs in autocommit mode with BEGIN and COMMIT of our own: the SQLite
        driver would otherwise commit each CREATE and DROP on its own, and a crash between
        dropping a table and filling its new shape would lose its rows.
        """
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("BEGIN")
            try:
                if connection.dialect.name == "postgresql":
                    # Instances starting together on one database: one creates or upgrades
                    # the schema, the others wait here and find it done. Released at COMMIT.
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
                self._upgrade(connection, upgrade=upgrade)
                # Checked before COMMIT: a database refused as damaged keeps its old schema.
                self._verify(connection)
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")

    def _upgrade(self, connection: sa.Connection, *, upgrade: bool) -> None:
        inspector = sa.inspect(connection)
        before = (
            {c["name"] for c in inspector.get_columns("reminders")}
            if inspector.has_table("reminders")
            else set()
        )
        _metadata.create_all(connection)
        found = connection.execute(sa.select(_schema.c.version)).scalar()
        if found is None:
            connection.execute(_schema.insert().values(version=SCHEMA_VERSION))
        elif found > SCHEMA_VERSION:
            msg = (
                f"{self._where}: the state database has schema version {found}, newer than "
                f"this eventwatch understands ({SCHEMA_VERSION}); upgrade eventwatch"
            )
            raise StateError(msg)
        elif found < SCHEMA_VERSION and not upgrade:
            holder = (
                "instances of the older eventwatch may use it: stop them all, start one "
                "daemon of this eventwatch (it upgrades the database), then the others"
                if self.shared
                else "a running eventwatch holds the state folder: restart it (it upgrades "
                "the database), then try again"
            )
            msg = (
                f"{self._where}: the state database has schema version {found}, older than "
                f"this eventwatch's ({SCHEMA_VERSION}), and {holder}"
            )
            raise OperationError(msg)
        elif found < SCHEMA_VERSION:
            # Version 1 had no reminders table; create_all above has added it (and the
            # attempts table of version 4), and no existing row changes. Version 2 wrote a
            # notice's kind in ``offset``.
            if before and "kind" not in before:
                try:
                    _kinds_apart(connection)  # the new table has the columns of version 4 too
                except ValueError as exc:  # rolled back: the file stays as it was
                    raise self._unusable("a notice's key is not as eventwatch writes it") from exc
            elif before:
                # Version 3 lacked the claims' columns; both are empty until a row is claimed.
                for name in _V4_COLUMNS:
                    if name not in before:
                        column = sa.schema.CreateColumn(_reminders.c[name]).compile(
                            dialect=connection.dialect
                        )
                        connection.exec_driver_sql(f"ALTER TABLE reminders ADD COLUMN {column}")
            connection.execute(_schema.update().values(version=SCHEMA_VERSION))

    def revisions(self, uids: Collection[str] | None = None) -> dict[str, Revision]:
        """The stored revisions of ``uids`` (every one if None) by UID; one round trip a chunk."""
        if uids is None:
            with self._connect() as connection:
                rows = connection.execute(sa.select(_revisions)).all()
            return {row.uid: _revision(row) for row in rows}
        wanted = list(uids)
        found: dict[str, Revision] = {}
        if not wanted:
            return found
        with self._connect() as connection:
            # In chunks: SQLite limits the number of parameters of one statement.
            for start in range(0, len(wanted), _CHUNK):
                query = sa.select(_revisions).where(
                    _revisions.c.uid.in_(wanted[start : start + _CHUNK])
                )
                found.update((row.uid, _revision(row)) for row in connection.execute(query))
        return found

    def _insert(self) -> Callable[[sa.Table], Any]:
        """The INSERT construct of this database's dialect, which knows ``ON CONFLICT``."""
        return postgresql.insert if self.shared else sqlite.insert

    def save_revisions(self, revisions: Iterable[Revision]) -> dict[str, Revision]:
        """Store new or changed revisions, replacing what was stored for their UIDs.

        Instances that store the same revision at once write it once: a stored revision
        with the same content is left as it is. Returns what is stored for those UIDs after.
        """
        rows = [
            {
                "uid": r.uid,
                "sequence": r.sequence,
                "major": r.major,
                "content": r.content,
                "modified": int(r.modified.timestamp()),
            }
            for r in revisions
        ]
        insert = self._insert()(_revisions)
        upsert = insert.on_conflict_do_update(
            index_elements=[_revisions.c.uid],
            set_={
                name: insert.excluded[name] for name in ("sequence", "major", "content", "modified")
            },
            where=_revisions.c.content != insert.excluded.content,
        )
        stored: dict[str, Revision] = {}
        with self._begin() as connection:
            # In chunks: SQLite limits the number of parameters of one statement.
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                connection.execute(upsert, chunk)
                query = sa.select(_revisions).where(_revisions.c.uid.in_([r["uid"] for r in chunk]))
                stored.update((found.uid, _revision(found)) for found in connection.execute(query))
        return stored

    def _now(self, connection: sa.Connection, given: datetime | None) -> datetime:
        """``given``, or the database's instant: PostgreSQL's ``now()``, SQLite's host clock.

        Instances on one PostgreSQL may have skewed clocks; the database's is the one they
        share, so every claim and lease is measured by it.
        """
        if given is not None:
            return given
        if self.shared:
            found: datetime = connection.execute(sa.select(sa.func.now())).scalar_one()
            return found.astimezone(UTC)
        return datetime.now(UTC)

    def now(self) -> datetime:
        """The database's current instant (see ``_now``)."""
        with self._connect() as connection:
            return self._now(connection, None)

    def reconcile(
        self,
        decide: Callable[[Mapping[str, Standing], datetime], Changes],
        now: datetime | None = None,
    ) -> Reconciled:
        """Carry out, in one transaction, the changes ``decide`` makes of what the ledger holds.

        ``decide`` is given each row's status and kind by key, and ``now`` or the database's
        instant (``policy.follow`` decides). Instances reconciling at once write each new
        row once, and change a row only if it is still as ``decide`` saw it.
        """
        with self._begin() as connection:
            at = self._now(connection, now)
            known = {
                row.key: Standing(Status(row.status), Kind(row.kind))
                for row in connection.execute(
                    sa.select(_reminders.c.key, _reminders.c.status, _reminders.c.kind)
                )
            }
            changes = decide(known, at)
            fresh = list(changes.fresh)
            self._add(connection, [_pending_row(r) for r in fresh])
            self._move(connection, list(changes.cancel), Status.PENDING, Status.CANCELLED)
            self._move(connection, list(changes.revive), Status.CANCELLED, Status.PENDING)
        return Reconciled(
            inserted=len(fresh), cancelled=len(changes.cancel), revived=len(changes.revive)
        )

    def _add(self, connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """Insert ``rows``, each unless a row with its key is there already."""
        insert = self._insert()(_reminders).on_conflict_do_nothing(
            index_elements=[_reminders.c.key]
        )
        for start in range(0, len(rows), _CHUNK):
            connection.execute(insert, rows[start : start + _CHUNK])

    @staticmethod
    def _move(connection: sa.Connection, keys: list[str], was: Status, status: Status) -> None:
        """Set the rows of ``keys`` that are still ``was`` to ``status``."""
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            connection.execute(
                _reminders.update()
                .where(_reminders.c.key.in_(chunk), _reminders.c.status == was.value)
                .values(status=status.value, next_attempt=None),
            )

    def rows_of(self, event_uid: str) -> list[Row]:
        """Every row, reminder or notice, of event ``event_uid``."""
        query = sa.select(_reminders).where(_reminders.c.event_uid == event_uid)
        with self._connect() as connection:
            return [_row(found) for found in connection.execute(query)]

    def add(self, planned: Iterable[Planned]) -> int:
        """Add as pending what the ledger does not hold yet (by key); how many were new."""
        rows = {p.key: _pending_row(p) for p in planned}
        if not rows:
            return 0
        with self._begin() as connection:
            known = set(
                connection.execute(
                    sa.select(_reminders.c.key).where(_reminders.c.key.in_(list(rows))),
                ).scalars(),
            )
            fresh = [row for key, row in rows.items() if key not in known]
            self._add(connection, fresh)
        return len(fresh)

    def pending_notices(self) -> list[Row]:
        """Change notices not yet sent."""
        query = sa.select(_reminders).where(
            _reminders.c.status == Status.PENDING.value,
            _reminders.c.kind != Kind.REMINDER.value,
        )
        with self._connect() as connection:
            return [_row(found) for found in connection.execute(query)]

    def rows(self) -> dict[str, Row]:
        """Every reminder row by key."""
        with self._connect() as connection:
            return {row.key: _row(row) for row in connection.execute(sa.select(_reminders))}

    def attempts(self, key: str) -> list[Attempt]:
        """Every claim of reminder ``key``, first first."""
        query = sa.select(_attempts).where(_attempts.c.key == key).order_by(_attempts.c.number)
        with self._connect() as connection:
            return [
                Attempt(
                    number=found.number,
                    instance=found.instance,
                    claimed_at=datetime.fromtimestamp(found.claimed_at, tz=UTC),
                    result=found.result,
                )
                for found in connection.execute(query)
            ]

    def counts(self) -> dict[str, int]:
        """How many reminders are in each status; ``OperationError`` if the database fails."""
        query = sa.select(_reminders.c.status, sa.func.count()).group_by(_reminders.c.status)
        with self._connect() as connection:
            found = {status: int(n) for status, n in connection.execute(query)}
        return {status.value: found.get(status.value, 0) for status in Status} | found

    def next_due(self, deferred: Collection[str] = ()) -> datetime | None:
        """The earliest instant a reminder wants attention, by the database's clock.

        A pending one at its due time or retry; a ``sending`` one when its lease runs out
        (its instance may have died, and another takes it over then). Rows of the calendars
        in ``deferred`` are left out, as ``claim_due`` leaves them.
        """
        when = sa.func.coalesce(_reminders.c.next_attempt, _reminders.c.due)
        pending = sa.select(sa.func.min(when)).where(
            _reminders.c.status == Status.PENDING.value, *_not_of(deferred)
        )
        leased = sa.select(sa.func.min(_reminders.c.lease_until)).where(
            _reminders.c.status == Status.SENDING.value, *_not_of(deferred)
        )
        with self._connect() as connection:
            found = [connection.execute(q).scalar() for q in (pending, leased)]
        return _instant(min((f for f in found if f is not None), default=None))

    def deferred(
        self,
        digests: Mapping[str, str],
        changed: Collection[str] = (),
        now: datetime | None = None,
    ) -> set[str]:
        """The calendars whose file here is older than one another instance has read.

        ``digests`` are this instance's files' by calendar id; ``changed`` the calendars
        whose file it has seen change, appear or go since it last applied them (also while
        it was stopped), which makes that the newest whatever was seen before: an edit, a
        removal, or a deliberate return to an earlier file. A file older than the newest, or
        missing here while another instance has one, is deferred until this instance sees it
        change: however long that takes, a file nobody changed here is never taken as newer
        than one somebody did (a host that missed a deploy must not roll it back). One
        instance on SQLite has no one to defer to: nothing is deferred.
        """
        if not self.shared:
            return set()
        removed = {c: _REMOVED for c in changed if c not in digests}
        rows = [{"calendar": c, "digest": d} for c, d in sorted({**digests, **removed}.items())]
        insert = postgresql.insert(_versions)
        with self._begin() as connection:
            at = _stamp(self._now(connection, now))
            fresh = [r | {"first_seen": at} for r in rows if r["calendar"] not in changed]
            edited = [r | {"first_seen": at} for r in rows if r["calendar"] in changed]
            if fresh:
                connection.execute(insert.on_conflict_do_nothing(), fresh)
            if edited:
                connection.execute(
                    insert.on_conflict_do_update(
                        index_elements=[_versions.c.calendar, _versions.c.digest],
                        set_={"first_seen": insert.excluded.first_seen},
                    ),
                    edited,
                )
            seen: dict[str, list[tuple[int, str]]] = {}
            for found in connection.execute(sa.select(_versions)):
                seen.setdefault(found.calendar, []).append((found.first_seen, found.digest))
        older: set[str] = set()
        for calendar, versions in seen.items():
            _, newest = max(versions)
            mine = digests.get(calendar)
            if mine is None:
                # Another instance has a file of it and this one has not: new, most likely,
                # its file on its way here. Its rows are not this instance's to cancel.
                if calendar not in changed and newest != _REMOVED:
                    older.add(calendar)
            elif newest != mine:
                older.add(calendar)
        return older

    def current(self, calendar: str, digest: str | None) -> bool:
        """Whether a plan made from this file of ``calendar`` decides what its rows are.

        ``digest`` is the SHA-256 of this instance's file, None if it has none. True if no
        instance has read a newer file (nor, for None, any file that was not then removed).
        One instance on SQLite is always current.
        """
        if not self.shared:
            return True
        query = (
            sa.select(_versions.c.digest)
            .where(_versions.c.calendar == calendar)
            .order_by(_versions.c.first_seen.desc(), _versions.c.digest.desc())
            .limit(1)
        )
        with self._connect() as connection:
            newest: str | None = connection.execute(query).scalar()
        return newest in (None, _REMOVED if digest is None else digest)

    def upcoming(self, after: datetime, until: datetime, limit: int) -> list[Row]:
        """Up to ``limit`` pending first attempts due from ``after`` to ``until``, soonest first."""
        query = (
            sa.select(_reminders)
            .where(
                _reminders.c.status == Status.PENDING.value,
                _reminders.c.due >= _stamp(after),
                _reminders.c.due <= _stamp(until),
                _reminders.c.next_attempt.is_(None),
            )
            .order_by(_reminders.c.due, _reminders.c.key)
            .limit(limit)
        )
        with self._connect() as connection:
            return [_row(found) for found in connection.execute(query)]

    def claim_due(
        self, now: datetime | None = None, limit: int = 1000, deferred: Collection[str] = ()
    ) -> Claim:
        """Mark up to ``limit`` reminders due as ``sending`` by this instance, and return them.

        Due means pending and due at ``now`` (by default the database's instant), or
        ``sending`` with its lease run out. One statement locks and updates the rows, and
        rows another instance has locked are skipped (``FOR UPDATE SKIP LOCKED``), so no two
        instances ever claim one row; each claim is recorded as an attempt of this instance.
        Rows of the calendars in ``deferred`` are left to the instances with their newer file.
        """
        when = sa.func.coalesce(_reminders.c.next_attempt, _reminders.c.due)
        with self._begin() as connection:
            claimed_at = self._now(connection, now)
            at = _stamp(claimed_at)
            due = (
                sa.select(_reminders.c.key)
                .where(
                    sa.or_(
                        sa.and_(_reminders.c.status == Status.PENDING.value, when <= at),
                        sa.and_(
                            _reminders.c.status == Status.SENDING.value,
                            sa.func.coalesce(_reminders.c.lease_until, 0) < at,
                        ),
                    ),
                    *_not_of(deferred),
                )
                .order_by(when, _reminders.c.key)
                .limit(limit)
                .with_for_update(skip_locked=True)
                # A fence: the planner may not fold the LIMIT into the UPDATE and take more.
                .cte("due")
                .prefix_with("MATERIALIZED", dialect="postgresql")
            )
            claim = (
                _reminders.update()
                .where(_reminders.c.key.in_(sa.select(due.c.key)))
                .values(
                    status=Status.SENDING.value,
                    attempts=_reminders.c.attempts + 1,
                    claimed_by=self.instance,
                    lease_until=at + int(self.lease.total_seconds()),
                )
                .returning(*_reminders.c)
            )
            found = connection.execute(claim).all()
            if found:
                # Numbered by claim, not by the row's tries: a released claim counts here.
                claimed: sa.BindParameter[str] = sa.bindparam("claimed_key")
                number = sa.select(sa.func.coalesce(sa.func.max(_attempts.c.number), 0) + 1)
                record = _attempts.insert().values(
                    key=claimed,
                    number=number.where(_attempts.c.key == claimed).scalar_subquery(),
                    instance=self.instance,
                    claimed_at=at,
                )
                connection.execute(record, [{"claimed_key": r.key} for r in found])
        rows = sorted(map(_row, found), key=lambda r: (r.next_attempt or r.due, r.key))
        return Claim(claimed_at, rows)

    def extend_leases(self) -> int:
        """Renew the lease of every row this instance is sending; how many it holds."""
        with self._begin() as connection:
            at = _stamp(self._now(connection, None))
            result = connection.execute(
                _reminders.update()
                .where(self._mine)
                .values(lease_until=at + int(self.lease.total_seconds())),
            )
        return int(result.rowcount)

    @property
    def _mine(self) -> sa.ColumnElement[bool]:
        """Rows this instance holds ``sending``."""
        return sa.and_(
            _reminders.c.status == Status.SENDING.value,
            _reminders.c.claimed_by == self.instance,
        )

    def requeue_in_flight(self) -> int:
        """Put ``sending`` rows back to pending: sent again, with the same Message-ID.

        On a shared database only this instance's own: another's are in its hands until
        its lease runs out. SQLite has one instance (the state lock), so all of them.
        """
        held = self._mine if self.shared else _reminders.c.status == Status.SENDING.value
        with self._begin() as connection:
            result = connection.execute(
                _reminders.update()
                .where(held)
                .values(status=Status.PENDING.value, lease_until=None),
            )
        return int(result.rowcount)

    def release(self, key: str) -> bool:
        """Give a claimed row back, pending and due, its attempt not counted (see ``Release``)."""
        return self._settle(key, "released", self._mine, status=Status.PENDING.value,
                            attempts=_reminders.c.attempts - 1)  # fmt: skip

    def mark_sent(self, key: str, message_id: str, at: datetime) -> bool:
        """Record that the server accepted the message; committed at once.

        Recorded even if this instance's lease ran out meanwhile (the message went out); a
        row recorded sent already is left as it is. Whether this call recorded it.
        """
        return self._settle(key, "sent", _reminders.c.status != Status.SENT.value,
                            status=Status.SENT.value, message_id=message_id, sent_at=_stamp(at),
                            last_error=None, next_attempt=None)  # fmt: skip

    def mark_retry(self, key: str, error: str, at: datetime) -> bool:
        """Back to pending, to be tried again at ``at``; False if the row is no longer ours."""
        return self._settle(key, "retry", self._mine, status=Status.PENDING.value,
                            last_error=error, next_attempt=_stamp(at))  # fmt: skip

    def mark_failed(self, key: str, error: str) -> bool:
        """Given up: a permanent refusal, or the event began before it could be sent."""
        return self._settle(key, "failed", self._mine, status=Status.FAILED.value,
                            last_error=error, next_attempt=None)  # fmt: skip

    def mark_skipped(self, key: str, reason: str) -> bool:
        """Not sent on purpose: it was due too long before eventwatch could send it."""
        return self._settle(key, "skipped", self._mine, status=Status.SKIPPED.value,
                            last_error=reason, next_attempt=None)  # fmt: skip

    def _settle(
        self, key: str, result: str, only: sa.ColumnElement[bool], **values: object
    ) -> bool:
        """Set ``values`` on row ``key`` if it is as ``only`` says; record the attempt's result.

        The result is this instance's last claim's, whether or not the row is still its own.
        """
        at = _stamp(datetime.now(UTC))  # a record of when, deciding nothing: no round trip
        with self._begin() as connection:
            number = sa.select(sa.func.max(_attempts.c.number)).where(
                _attempts.c.key == key, _attempts.c.instance == self.instance
            )
            connection.execute(
                _attempts.update()
                .where(_attempts.c.key == key, _attempts.c.number == number.scalar_subquery())
                .values(result=result, settled_at=at),
            )
            done = connection.execute(
                _reminders.update()
                .where(_reminders.c.key == key, only)
                .values(lease_until=None, **values)
            )
        return done.rowcount == 1

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()

    def copy_into(self, target: Ledger) -> dict[str, int]:
        """Copy every revision, reminder and attempt into the empty ``target``; counts by table.

        One transaction on ``target``, written in chunks and checked against this ledger's
        counts before it commits: all of it is copied, or nothing. A target that holds any row
        is refused (``OperationError``), never merged into. Nothing is in flight while a ledger
        moves (its daemon is stopped), so a ``sending`` row arrives pending, its lease cleared.
        """
        tables = (_revisions, _reminders, _attempts)
        requeued = {"status": Status.PENDING.value, "lease_until": None}

        def count(connection: sa.Connection, table: sa.Table) -> int:
            query = sa.select(sa.func.count()).select_from(table)
            return int(connection.execute(query).scalar_one())

        copied: dict[str, int] = {}
        with target._begin() as into:
            if into.dialect.name == "postgresql":
                # An instance started on the target meanwhile waits for the commit, then sees
                # the whole ledger; a lock held elsewhere for long fails the move, not hangs it.
                into.exec_driver_sql("SET LOCAL lock_timeout = '10s'")
                into.exec_driver_sql("LOCK TABLE revisions, reminders, attempts IN EXCLUSIVE MODE")
            held = {table.name: count(into, table) for table in tables}
            if any(held.values()):
                found = ", ".join(
                    f"{n} {name if n > 1 else name.removesuffix('s')}"
                    for name, n in held.items()
                    if n
                )
                msg = (
                    f"{target._where}: the database already holds {found}: a ledger is moved "
                    "only into an empty database, never merged into one; name an empty one"
                )
                raise OperationError(msg)
            with self._failing():
                source = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                with self._failing():
                    # One read transaction, as in _migrate: all tables are read from one snapshot.
                    source.exec_driver_sql("BEGIN")
                for table in tables:
                    with self._failing():
                        expected = count(source, table)
                        rows = source.execute(
                            sa.select(table).order_by(*table.primary_key.columns)
                        ).mappings()
                    copied[table.name] = 0
                    while True:
                        with self._failing():
                            chunk = [dict(row) for row in rows.fetchmany(_CHUNK)]
                        if not chunk:
                            break
                        if table is _reminders:
                            chunk = [
                                row | requeued if row["status"] == Status.SENDING.value else row
                                for row in chunk
                            ]
                        into.execute(table.insert(), chunk)
                        copied[table.name] += len(chunk)
                    stored = count(into, table)
                    if not expected == copied[table.name] == stored:
                        msg = (
                            f"{target._where}: {table.name}: {self._where} holds {expected}, "
                            f"{copied[table.name]} were read and {stored} written; nothing is "
                            "kept: try again"
                        )
                        raise OperationError(msg)
            finally:
                with contextlib.suppress(SQLAlchemyError):
                    source.exec_driver_sql("ROLLBACK")
                source.close()
        return copied
