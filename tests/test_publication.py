"""A publication: revisions kept in the store, every feed rendered, filtered feeds on demand."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from eventwatch import feeds, publication
from eventwatch.ledger import Ledger
from eventwatch.models import Calendar, ReminderPolicy

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from eventwatch.revisions import Revision

FIRST = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 1, 2, tzinfo=UTC)
OPTIONS = publication.Options(timedelta(hours=1), alarms=False, defaults=ReminderPolicy())


def calendar(cid: str, *events: dict[str, Any]) -> Calendar:
    """A Brussels calendar with the given events."""
    return Calendar.model_validate(
        {"id": cid, "name": cid.title(), "timezone": "Europe/Brussels", "events": list(events)},
    )


def test_build_stores_revisions_and_bumps_only_edits(tmp_path: Path) -> None:
    """A rebuild after moving one event raises that event's SEQUENCE alone, in the store too."""
    ledger = Ledger.in_folder(tmp_path)
    a = {"id": "a", "title": "A", "start": date(2026, 5, 1), "location": "X"}
    b = {"id": "b", "title": "B", "start": date(2026, 5, 2)}
    publication.build((calendar("c", a, b),), OPTIONS, ledger, feeds.Renderer(), FIRST)
    moved = a | {"location": "Y"}
    publication.build((calendar("c", moved, b),), OPTIONS, ledger, feeds.Renderer(), LATER)
    stored = ledger.revisions()
    assert (stored["c/a@eventwatch"].sequence, stored["c/a@eventwatch"].modified) == (1, LATER)
    assert (stored["c/b@eventwatch"].sequence, stored["c/b@eventwatch"].modified) == (0, FIRST)
    ledger.close()


def test_feeds_per_calendar_and_all(tmp_path: Path) -> None:
    """There is a feed per calendar and one with all; unknown names give None."""
    ledger = Ledger.in_folder(tmp_path)
    built = publication.build(
        (
            calendar("one", {"id": "a", "title": "A", "start": date(2026, 5, 1)}),
            calendar("two", {"id": "b", "title": "B", "start": date(2026, 5, 2)}),
        ),
        OPTIONS,
        ledger,
        feeds.Renderer(),
        FIRST,
    )
    assert sorted(built.rendered) == ["all", "one", "two"]
    assert built.rendered["all"].body.count(b"BEGIN:VEVENT") == 2
    assert built.rendered["one"].body.count(b"BEGIN:VEVENT") == 1
    assert b"X-WR-CALNAME:All calendars\r\n" in built.rendered["all"].body
    assert built.feed("three") is None
    ledger.close()


def test_single_calendar_shares_its_bytes(tmp_path: Path) -> None:
    """With one calendar, all.ics and the calendar's feed are the same bytes, held once."""
    ledger = Ledger.in_folder(tmp_path)
    built = publication.build(
        (calendar("one", {"id": "a", "title": "A", "start": date(2026, 5, 1)}),),
        OPTIONS,
        ledger,
        feeds.Renderer(),
        FIRST,
    )
    assert built.rendered["one"] is built.rendered["all"]
    ledger.close()


def test_filtered_feed_leaves_the_cache_on_the_full_feed(tmp_path: Path) -> None:
    """Rendering a category filter does not move the cached events out of the full feed."""
    ledger = Ledger.in_folder(tmp_path)
    renderer = feeds.Renderer()
    built = publication.build(
        (
            calendar(
                "one",
                {"id": "a", "title": "A", "start": date(2026, 5, 1), "categories": ["x"]},
                {"id": "b", "title": "B", "start": date(2026, 5, 2)},
            ),
        ),
        OPTIONS,
        ledger,
        renderer,
        FIRST,
    )
    filtered = built.feed("all", frozenset({"x"}))
    assert filtered is not None
    assert filtered.body.count(b"BEGIN:VEVENT") == 1
    assert len(renderer.placements(built.rendered["all"].body)) == 2
    ledger.close()


class _Stale:
    """An instance that read the store before another saved: it sees nothing stored yet."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def revisions(self) -> dict[str, Revision]:
        """Nothing, as read before the other instance's save."""
        return {}

    def save_revisions(self, changed: Iterable[Revision]) -> dict[str, Revision]:
        """Save into the shared ledger, which keeps what was stored first."""
        return self.ledger.save_revisions(changed)


def test_an_instance_serves_the_revision_another_stored_first(tmp_path: Path) -> None:
    """Instances revising a new event at once serve the revision stored first: same bytes."""
    ledger = Ledger.in_folder(tmp_path)
    cals = (calendar("c", {"id": "a", "title": "A", "start": date(2026, 5, 1)}),)
    first = publication.build(cals, OPTIONS, ledger, feeds.Renderer(), FIRST)
    second = publication.build(cals, OPTIONS, _Stale(ledger), feeds.Renderer(), LATER)
    assert second.rendered["all"].body == first.rendered["all"].body
    assert second.rendered["all"].etag == first.rendered["all"].etag
    assert ledger.revisions()["c/a@eventwatch"].modified == FIRST
    ledger.close()


def test_a_deferred_calendar_is_served_as_stored_and_changes_nothing(tmp_path: Path) -> None:
    """An older file of a calendar another instance has newer: stored revisions, no bump."""
    ledger = Ledger.in_folder(tmp_path)
    event = {"id": "a", "title": "A", "start": date(2026, 5, 1), "location": "X"}
    publication.build((calendar("c", event),), OPTIONS, ledger, feeds.Renderer(), FIRST)
    newer = calendar("c", event | {"location": "Y"})
    publication.build((newer,), OPTIONS, ledger, feeds.Renderer(), LATER)
    stored = ledger.revisions()
    older = (
        calendar("c", event),
        calendar("d", {"id": "b", "title": "B", "start": date(2026, 5, 2)}),
    )
    built = publication.build(older, OPTIONS, ledger, feeds.Renderer(), LATER, deferred={"c"})
    assert built.bumped == ()
    assert ledger.revisions()["c/a@eventwatch"] == stored["c/a@eventwatch"]  # not moved back
    (served,) = [e.revision for e in built.entries if e.event.calendar == "c"]
    assert (served.sequence, served.modified) == (1, LATER)  # the newer file's, as stored
    assert served.content != stored["c/a@eventwatch"].content  # not to be cached as the newer
    assert "d/b@eventwatch" in ledger.revisions()  # other calendars are revised as ever
    ledger.close()
