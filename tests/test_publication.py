"""A publication: revisions kept in the store, every feed rendered, filtered feeds on demand."""

from __future__ import annotations

import gc
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hypothesis import given
from hypothesis import strategies as st

from eventwatch import feeds, publication
from eventwatch.ledger import Ledger
from eventwatch.models import Calendar, ReminderPolicy, calendar_of

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable
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

    def revisions(self, _uids: Collection[str] | None = None) -> dict[str, Revision]:
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


class _Memory:
    """A revision store in memory that counts what each build asks for and saves."""

    def __init__(self) -> None:
        self.stored: dict[str, Revision] = {}
        self.asked: list[str] = []
        self.saved: list[str] = []

    def revisions(self, uids: Collection[str] | None = None) -> dict[str, Revision]:
        """The stored revisions of ``uids`` (every one if None)."""
        if uids is not None:
            self.asked.extend(uids)
        return {u: r for u, r in self.stored.items() if uids is None or u in uids}

    def save_revisions(self, changed: Iterable[Revision]) -> dict[str, Revision]:
        """Keep ``changed``; what is kept of them."""
        saved = {r.uid: r for r in changed}
        self.saved.extend(saved)
        self.stored |= saved
        return saved


def _events(count: int, edits: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """``count`` events, each changed by ``edits`` (``None`` values remove the event)."""
    made = []
    for n in range(count):
        event = {"id": f"e{n}", "title": f"E{n}", "start": date(2026, 5, 1 + n % 28)}
        edit = edits.get(n, {})
        if edit.get("remove"):
            continue
        made.append(event | {k: v for k, v in edit.items() if k != "remove"})
    return made


_EDIT = st.fixed_dictionaries(
    {},
    optional={
        "title": st.sampled_from(["Moved", "Renamed"]),
        "location": st.sampled_from(["X", "Y"]),
        "description": st.sampled_from(["d", "e"]),
        "start": st.sampled_from([date(2026, 6, 1), date(2026, 6, 2)]),
        "remove": st.booleans(),
    },
)
_STEP = st.tuples(
    st.dictionaries(st.integers(0, 11), _EDIT, max_size=4),
    st.sampled_from([(), ("c",), ("d",)]),  # calendars another instance holds newer
    st.booleans(),  # alarms in the feed
    st.sampled_from(["P1D", "PT2H"]),  # calendar c's reminder
    st.sampled_from(["C", "Renamed C"]),  # calendar c's name, in its feed's header
    st.booleans(),  # another instance with the same files stores a new revision of d/e0
)


@given(st.lists(_STEP, min_size=1, max_size=5))
def test_a_build_from_the_last_is_the_build_from_scratch(steps: list[Any]) -> None:
    """Reusing the last publication's unchanged events gives what building them all again does.

    The same bytes of every feed, the same events bumped and the same revisions stored, for
    any series of edits, removals, deferred calendars and policy changes, and whatever other
    instances sharing the store store meanwhile: the one with the newer file of a deferred
    calendar, or one with the same files that edited and reverted an event.
    """
    incremental, scratch = _Memory(), _Memory()
    last: publication.Publication | None = None
    for n, (edits, deferred, alarms, offset, name, beside) in enumerate(steps):
        options = publication.Options(timedelta(hours=1), alarms=alarms, defaults=ReminderPolicy())
        cals = (
            Calendar.model_validate(
                {"id": "c", "name": name, "timezone": "Europe/Brussels",
                 "reminders": {"offsets": [offset]}, "events": _events(12, edits)},
            ),
            calendar("d", *_events(3, {})),
        )  # fmt: skip
        when = FIRST + timedelta(days=n)
        for store in (incremental, scratch):
            for uid, stored in store.stored.items():
                if calendar_of(uid) in deferred:  # the other instance moves its events
                    store.stored[uid] = replace(stored, sequence=stored.sequence + 1)
            if beside and "d/e0@eventwatch" in store.stored:  # an edit made and reverted there
                bumped = store.stored["d/e0@eventwatch"]
                store.stored[bumped.uid] = replace(bumped, sequence=bumped.sequence + 2)
        made = publication.build(
            cals, options, incremental, feeds.Renderer(), when, deferred=deferred, last=last,
            shared=True,
        )  # fmt: skip
        again = publication.build(cals, options, scratch, feeds.Renderer(), when, deferred=deferred)
        assert {k: f.body for k, f in made.rendered.items()} == {
            k: f.body for k, f in again.rendered.items()
        }
        assert made.bumped == again.bumped
        assert incremental.stored == scratch.stored
        last = made


def test_a_build_after_one_edit_reads_and_saves_that_event_alone() -> None:
    """Unchanged events are neither read from the store nor fingerprinted nor saved again."""
    store = _Memory()
    events = _events(50, {})
    first = publication.build((calendar("c", *events),), OPTIONS, store, feeds.Renderer(), FIRST)
    store.asked.clear()
    store.saved.clear()
    edited = _events(50, {7: {"title": "Edited"}})
    second = publication.build(
        (calendar("c", *edited),), OPTIONS, store, feeds.Renderer(), LATER, last=first
    )
    assert (store.asked, store.saved) == (["c/e7@eventwatch"], ["c/e7@eventwatch"])
    assert second.bumped == ("c/e7@eventwatch",)
    assert [e.revision for e in second.entries if e.event.id != "e7"] == [
        e.revision for e in first.entries if e.event.id != "e7"
    ]


def test_the_cache_kept_for_a_restart_holds_every_event_of_every_calendar() -> None:
    """The calendars' feeds copy from the full one and leave the renderer's cache on it."""
    renderer = feeds.Renderer()
    built = publication.build(
        (calendar("c", *_events(5, {})), calendar("d", *_events(4, {}))),
        OPTIONS,
        _Memory(),
        renderer,
        FIRST,
    )
    body = built.rendered["all"].body
    kept = renderer.placements(body)
    assert len(kept) == 9
    assert sorted(body[start:end].count(b"BEGIN:VEVENT") for _, start, end, _ in kept) == [1] * 9


def test_a_replaced_publication_is_freed_without_the_collector(tmp_path: Path) -> None:
    """A publication holds no reference cycle: freed by reference counting once replaced.

    The daemon freezes what a reload made (``daemon.settle``), out of the collector's sight.
    """
    ledger = Ledger.in_folder(tmp_path)
    gc.collect()
    gc.disable()
    try:
        cals = (calendar("c", *_events(20, {})), calendar("d", *_events(3, {})))
        first = publication.build(cals, OPTIONS, ledger, feeds.Renderer(), FIRST)
        edited = (calendar("c", *_events(20, {4: {"title": "Edited"}})), cals[1])
        second = publication.build(edited, OPTIONS, ledger, first.renderer, LATER, last=first)
        gc.collect()  # what the builds themselves left
        del first
        assert gc.collect() == 0
        assert second.feed("all") is not None
    finally:
        gc.enable()
        ledger.close()


def test_an_edit_into_the_repeated_hour_is_not_taken_for_no_change() -> None:
    """02:30 before and after the clocks go back are equal to Python, not to subscribers.

    Moving an end from 00:30Z to 01:30Z keeps the Brussels wall time 02:30 (fold 0, then 1):
    the build from the last one must still see the change, as a build from scratch does.
    """
    start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)

    def cals(end: datetime) -> tuple[Calendar, ...]:
        return (calendar("c", {"id": "m", "title": "Maintenance", "start": start, "end": end}),)

    store, scratch = _Memory(), _Memory()
    first = publication.build(
        cals(datetime(2026, 10, 25, 0, 30, tzinfo=UTC)), OPTIONS, store, feeds.Renderer(), FIRST
    )
    publication.build(
        cals(datetime(2026, 10, 25, 0, 30, tzinfo=UTC)), OPTIONS, scratch, feeds.Renderer(), FIRST
    )
    moved = cals(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert moved[0].events[0] == first.entries[0].event  # what Python says
    made = publication.build(moved, OPTIONS, store, feeds.Renderer(), LATER, last=first)
    again = publication.build(moved, OPTIONS, scratch, feeds.Renderer(), LATER)
    assert made.rendered["all"].body == again.rendered["all"].body
    assert b"DTEND:20261025T013000Z\r\n" in made.rendered["all"].body
    assert made.bumped == again.bumped == ("c/m@eventwatch",)
