"""The only SQL: what eventwatch keeps in its state folder (SQLAlchemy Core).

One database, SQLite in the state folder by default. It holds the revision of every event a
feed has shown (so SEQUENCE and LAST-MODIFIED survive restarts); the reminder ledger joins it.
The schema carries a version number: an older database is upgraded in place, a newer one is
refused rather than misread.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from eventwatch.errors import OperationError
from eventwatch.revisions import Revision

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

SCHEMA_VERSION = 1
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


def url_for(state_dir: Path) -> str:
    """The database URL of the SQLite file in ``state_dir``."""
    return f"sqlite:///{state_dir / DATABASE_FILE}"


class Ledger:
    """A connection to the state database; every method is one transaction."""

    def __init__(self, url: str) -> None:
        """Connect to ``url`` and create or upgrade the schema."""
        self.url = url
        self._engine = sa.create_engine(url)
        try:
            self._migrate()
        except SQLAlchemyError as exc:
            self._engine.dispose()
            raise OperationError(f"{self._where}: cannot open the state database: {exc}") from exc

    @classmethod
    def in_folder(cls, state_dir: Path) -> Ledger:
        """Open (creating it if need be) the SQLite database in ``state_dir``."""
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OperationError(
                f"{state_dir}: cannot create the state folder: {exc.strerror}"
            ) from exc
        return cls(url_for(state_dir))

    @property
    def _where(self) -> str:
        """The database as messages name it, without any password in its URL."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def _migrate(self) -> None:
        with self._engine.begin() as connection:
            _metadata.create_all(connection)
            found = connection.execute(sa.select(_schema.c.version)).scalar()
            if found is None:
                connection.execute(_schema.insert().values(version=SCHEMA_VERSION))
            elif found > SCHEMA_VERSION:
                msg = (
                    f"{self._where}: the state database has schema version {found}, newer than "
                    f"this eventwatch understands ({SCHEMA_VERSION}); upgrade eventwatch"
                )
                raise OperationError(msg)
            # Upgrades from older versions go here, one step per version, when there are any.

    def revisions(self) -> dict[str, Revision]:
        """Every stored revision by UID."""
        with self._engine.connect() as connection:
            rows = connection.execute(sa.select(_revisions)).all()
        return {
            row.uid: Revision(
                uid=row.uid,
                sequence=row.sequence,
                major=row.major,
                content=row.content,
                modified=datetime.fromtimestamp(row.modified, tz=UTC),
            )
            for row in rows
        }

    def save_revisions(self, revisions: Iterable[Revision]) -> None:
        """Store new or changed revisions, replacing what was stored for their UIDs."""
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
        with self._engine.begin() as connection:
            # In chunks: SQLite limits the number of parameters of one statement.
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                uids = [row["uid"] for row in chunk]
                connection.execute(_revisions.delete().where(_revisions.c.uid.in_(uids)))
                connection.execute(_revisions.insert(), chunk)

    def close(self) -> None:
        """Release the connections."""
        self._engine.dispose()
