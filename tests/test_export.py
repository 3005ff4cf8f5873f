"""Static export: every feed and the index page written into a folder, as the server serves them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from eventwatch import feeds, pages, publication
from eventwatch.errors import OperationError
from eventwatch.export import export
from eventwatch.models import Calendar, ReminderPolicy

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable
    from pathlib import Path

    from eventwatch.revisions import Revision

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
BASE = "https://cal.example.org/"


class Revisions:
    """A revision store in memory: the ledger's part that a publication needs."""

    def __init__(self) -> None:
        """Hold no revision yet."""
        self.stored: dict[str, Revision] = {}

    def revisions(self, uids: Collection[str] | None = None) -> dict[str, Revision]:
        """The stored revisions of ``uids`` (every one if None) by UID."""
        return {u: r for u, r in self.stored.items() if uids is None or u in uids}

    def save_revisions(self, changed: Iterable[Revision]) -> dict[str, Revision]:
        """Keep new or changed revisions; what is kept of them."""
        saved = {r.uid: r for r in changed}
        self.stored |= saved
        return saved


@pytest.fixture
def built() -> publication.Publication:
    """A publication of two small calendars, ``alpha`` and ``beta``."""
    calendars = tuple(
        Calendar.model_validate(
            {
                "id": name,
                "name": name.title(),
                "timezone": "Europe/Brussels",
                "events": [{"id": "one", "title": "One", "start": date(2026, 6, 1)}],
            }
        )
        for name in ("beta", "alpha")
    )
    options = publication.Options(timedelta(hours=1), alarms=False, defaults=ReminderPolicy())
    return publication.build(calendars, options, Revisions(), feeds.Renderer(), NOW)


def test_writes_every_feed_and_the_page(built: publication.Publication, tmp_path: Path) -> None:
    """all.ics, one CALENDAR.ics per calendar and index.html are written, nothing else."""
    export(built, tmp_path / "out", BASE, NOW)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["all.ics", "alpha.ics", "beta.ics", "index.html"]


def test_returns_the_paths_written_in_name_order(
    built: publication.Publication, tmp_path: Path
) -> None:
    """The paths come back sorted by name, as the command prints them."""
    out = tmp_path / "out"
    written = export(built, out, BASE, NOW)
    assert written == [out / n for n in ("all.ics", "alpha.ics", "beta.ics", "index.html")]


def test_each_feed_holds_the_served_bytes(built: publication.Publication, tmp_path: Path) -> None:
    """Each .ics file is byte for byte the body the server serves for that feed."""
    export(built, tmp_path, BASE, NOW)
    for name, feed in built.rendered.items():
        assert (tmp_path / f"{name}.ics").read_bytes() == feed.body


def test_the_page_is_rendered_for_the_base_url(
    built: publication.Publication, tmp_path: Path
) -> None:
    """index.html is the index page with its links under the given base URL, as of ``now``."""
    export(built, tmp_path, BASE, NOW)
    page = (tmp_path / "index.html").read_bytes()
    assert page == pages.render(built, BASE, NOW)
    assert b"https://cal.example.org/" in page


def test_makes_the_folder_and_its_parents(built: publication.Publication, tmp_path: Path) -> None:
    """A folder that does not exist yet is made, with any missing parents."""
    out = tmp_path / "a" / "b" / "public"
    export(built, out, BASE, NOW)
    assert (out / "all.ics").is_file()


def test_replaces_earlier_files_and_leaves_others_alone(
    built: publication.Publication, tmp_path: Path
) -> None:
    """A second export replaces its own files; a file it does not write stays."""
    (tmp_path / "all.ics").write_bytes(b"stale")
    (tmp_path / "robots.txt").write_bytes(b"User-agent: *\n")
    export(built, tmp_path, BASE, NOW)
    assert (tmp_path / "all.ics").read_bytes() == built.rendered[publication.ALL].body
    assert (tmp_path / "robots.txt").read_bytes() == b"User-agent: *\n"


def test_leaves_no_temporary_file(built: publication.Publication, tmp_path: Path) -> None:
    """Only the exported files are in the folder afterwards: no hidden temporary ones."""
    export(built, tmp_path, BASE, NOW)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_folder_it_cannot_make_is_an_operation_error(
    built: publication.Publication, tmp_path: Path
) -> None:
    """An ``out`` that is a file is one OperationError naming it and why, not an OSError."""
    out = tmp_path / "public"
    out.write_bytes(b"")
    with pytest.raises(OperationError) as caught:
        export(built, out, BASE, NOW)
    assert str(caught.value) == f"{out}: cannot write: File exists"
