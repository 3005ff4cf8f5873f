"""The state database: revisions kept across opens, and its schema version guarded."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from eventwatch.errors import OperationError
from eventwatch.ledger import DATABASE_FILE, SCHEMA_VERSION, Ledger
from eventwatch.revisions import Revision

if TYPE_CHECKING:
    from pathlib import Path

WHEN = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_revisions_survive_reopening(tmp_path: Path) -> None:
    """What one run saved, the next reads back exactly."""
    saved = [Revision(f"cal/e{n}@eventwatch", n, "m", "c", WHEN) for n in range(3)]
    first = Ledger.in_folder(tmp_path / "state")
    first.save_revisions(saved)
    first.close()
    second = Ledger.in_folder(tmp_path / "state")
    assert second.revisions() == {r.uid: r for r in saved}
    second.close()


def test_saving_replaces_by_uid(tmp_path: Path) -> None:
    """A new revision of an event replaces the old one; others stay."""
    ledger = Ledger.in_folder(tmp_path)
    ledger.save_revisions([Revision("a", 0, "m", "c", WHEN), Revision("b", 0, "m", "c", WHEN)])
    ledger.save_revisions([Revision("a", 1, "m2", "c2", WHEN)])
    assert {uid: r.sequence for uid, r in ledger.revisions().items()} == {"a": 1, "b": 0}
    ledger.close()


def test_many_revisions_in_one_save(tmp_path: Path) -> None:
    """More revisions than SQLite allows parameters in one statement are saved."""
    ledger = Ledger.in_folder(tmp_path)
    ledger.save_revisions([Revision(f"e{n}", 0, "m", "c", WHEN) for n in range(2345)])
    assert len(ledger.revisions()) == 2345
    ledger.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer eventwatch is not misread."""
    Ledger.in_folder(tmp_path).close()
    engine = sa.create_engine(f"sqlite:///{tmp_path / DATABASE_FILE}")
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE schema_version SET version = :v"), {"v": SCHEMA_VERSION + 1}
        )
    engine.dispose()
    with pytest.raises(OperationError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
        Ledger.in_folder(tmp_path)


def test_unwritable_state_folder_is_named(tmp_path: Path) -> None:
    """A state folder that cannot be created is reported with its path."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OperationError, match="cannot create the state folder"):
        Ledger.in_folder(blocker / "state")
