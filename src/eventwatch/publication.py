"""The feeds of one set of calendars, rendered and ready to serve or export."""

from __future__ import annotations

import operator
import threading
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from eventwatch import feeds
from eventwatch.models import Status, Timing, in_start_order
from eventwatch.revisions import Revision, revise

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping, Sequence
    from datetime import datetime

    from eventwatch.models import Calendar, Event, ReminderPolicy
    from eventwatch.settings import Settings

ALL = "all"
"""The name of the feed with every calendar."""

_VARIANTS = 64  # category-filtered feeds kept per publication


class RevisionStore(Protocol):
    """Where revisions persist between runs (the ledger)."""

    def revisions(self, uids: Collection[str] | None = None) -> dict[str, Revision]:
        """The stored revisions of ``uids`` (of every event if None), by UID."""
        ...

    def save_revisions(self, changed: Iterable[Revision]) -> Mapping[str, Revision]:
        """Store new or changed revisions; what is stored for their UIDs afterwards.

        What is stored may be another instance's revision of the same content, saved first.
        """
        ...


@dataclass(frozen=True, slots=True)
class Options:
    """What a publication needs from the settings."""

    refresh: timedelta
    alarms: bool
    defaults: ReminderPolicy

    @classmethod
    def of(cls, settings: Settings) -> Options:
        """The options ``settings`` call for."""
        return cls(
            refresh=settings.feeds.refresh_interval,
            alarms=settings.feeds.alarms,
            defaults=settings.reminders,
        )


@dataclass
class Publication:
    """Every feed of one set of calendars; category-filtered feeds are rendered on demand."""

    calendars: tuple[Calendar, ...]
    entries: tuple[feeds.Entry, ...]
    rendered: dict[str, feeds.Feed]
    headers: dict[str, feeds.Header]
    built: datetime
    renderer: feeds.Renderer = field(repr=False)
    bumped: tuple[str, ...] = ()
    """UIDs of events whose time, place, title or status changed since last published."""
    options: Options | None = None
    deferred: frozenset[str] = frozenset()
    """The calendars served with their stored revisions (see ``build``)."""
    groups: Mapping[str, Sequence[feeds.Entry]] = field(default_factory=dict, repr=False)
    """The entries of each feed by its name, as rendered."""
    _variants: dict[tuple[str, frozenset[str]], feeds.Feed] = field(
        default_factory=dict, repr=False
    )
    _attachments: dict[str, bytes] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def event_count(self) -> int:
        """How many events the calendars hold."""
        return len(self.entries)

    def attachment(self, event_uid: str) -> bytes:
        """Event ``event_uid`` alone, as the calendar attached to its reminders.

        It carries the revision the feeds show, so a client that subscribed sees one event.
        """
        with self._lock:
            found = self._attachments.get(event_uid)
        if found is not None:
            return found
        entry = next(e for e in self.entries if e.event.uid == event_uid)
        header = feeds.Header(entry.event.title, "", self.headers[ALL].refresh)
        found = self.renderer.render(header, [entry], remember=False).body
        with self._lock:
            # One event's reminders go to many recipients at once: render it once for all.
            if len(self._attachments) >= _VARIANTS:
                self._attachments.pop(next(iter(self._attachments)))
            self._attachments[event_uid] = found
        return found

    def feed(self, name: str, categories: frozenset[str] = frozenset()) -> feeds.Feed | None:
        """Feed ``name`` (``all`` or a calendar id), keeping events with any of ``categories``.

        ``None`` when there is no such calendar. Filtered feeds reuse every encoded event, so
        rendering one costs a join; call it off the event loop all the same.
        """
        if name not in self.rendered:
            return None
        if not categories:
            return self.rendered[name]
        key = (name, categories)
        with self._lock:
            found = self._variants.get(key)
        if found is not None:
            return found
        chosen = [
            e
            for e in self.entries
            if name in (ALL, e.event.calendar) and categories & set(e.event.categories)
        ]
        rendered = self.renderer.render(self.headers[name], chosen, remember=False)
        with self._lock:
            if len(self._variants) >= _VARIANTS:
                self._variants.pop(next(iter(self._variants)))
            self._variants[key] = rendered
        return rendered


def _triggers(
    event: Event, calendar: ReminderPolicy, defaults: ReminderPolicy
) -> tuple[timedelta, ...]:
    """The reminders' offsets as alarm triggers relative to the event's start in a feed.

    Whole days stay nominal days, as iCalendar durations count them; an all-day event's
    trigger counts from its midnight, so it fires at the anchor time like the e-mail does.
    """
    if event.status is Status.CANCELLED:
        return ()
    timing = Timing.of(event, calendar, defaults)
    at = timing.all_day_at
    shift = timedelta(hours=at.hour, minutes=at.minute, seconds=at.second)
    if not event.all_day:
        shift = timedelta(0)
    return tuple(shift - timedelta(days=o.days, seconds=o.seconds) for o in timing.offsets)


def _all_header(calendars: Sequence[Calendar], refresh: timedelta) -> feeds.Header:
    if len(calendars) == 1:
        return feeds.Header(calendars[0].name, calendars[0].description.strip(), refresh)
    names = ", ".join(c.name for c in calendars)
    return feeds.Header("All calendars", f"Every event of: {names}", refresh)


def _unchanged(
    last: Publication | None,
    calendars: tuple[Calendar, ...],
    options: Options,
    deferred: Collection[str],
) -> dict[str, feeds.Entry]:
    """The entries of ``last`` still right: the same event, alarms and calendar not deferred.

    An event equal to the one last built was revised then against what the store held, and
    nothing but a newer file of its calendar (which defers it) changes that: so its entry
    stands, and neither its fingerprints nor its stored revision are needed again.
    """
    if last is None:
        return {}
    same_policy = last.options == options and {c.id: c.reminders for c in last.calendars} == {
        c.id: c.reminders for c in calendars
    }
    if not same_policy:
        return {}
    held = set(deferred) | last.deferred
    return {e.revision.uid: e for e in last.entries if e.event.calendar not in held}


def _same(one: Event, other: Event) -> bool:
    """Whether two events are the same, instants too.

    Python holds equal two date-times of one zone at the same wall time, whatever ``fold``
    says: 02:30 before and after the clocks go back are two instants to a subscriber.
    """
    return one == other and all(
        getattr(a, "fold", 0) == getattr(b, "fold", 0)
        for a, b in ((one.start, other.start), (one.end, other.end))
    )


def _entries(  # noqa: PLR0913 - the parts of ``build`` that decide each event's revision
    events: list[Event],
    calendars: tuple[Calendar, ...],
    options: Options,
    store: RevisionStore,
    *,
    now: datetime,
    deferred: Collection[str],
    last: Publication | None,
    shared: bool,
) -> tuple[list[feeds.Entry], list[str]]:
    """Each event's entry (in ``events``' order), and the UIDs of those bumped (see ``build``)."""
    uids = [e.uid for e in events]
    kept = _unchanged(last, calendars, options, deferred)
    reused: dict[str, feeds.Entry] = {}
    for uid, event in zip(uids, events, strict=True):
        entry = kept.get(uid)
        if entry is not None and (entry.event is event or _same(entry.event, event)):
            reused[uid] = entry
    everything = store.revisions() if last is None or shared else None
    if everything is not None:
        # Other instances may have stored revisions since: an entry stands only if it still
        # holds what the store does.
        reused = {uid: e for uid, e in reused.items() if everything.get(uid) == e.revision}
    fresh = [(uid, e) for uid, e in zip(uids, events, strict=True) if uid not in reused]
    previous = everything if everything is not None else store.revisions([uid for uid, _ in fresh])
    policies = {c.id: c.reminders for c in calendars}
    revised = {uid: revise(e, previous.get(uid), now) for uid, e in fresh}
    # Stored before anything is served, so that no client sees a revision a restart would undo;
    # served as stored, so that instances sharing the store serve the same bytes.
    stored = store.save_revisions(
        revised[uid] for uid, e in fresh
        if revised[uid] is not previous.get(uid) and e.calendar not in deferred
    )  # fmt: skip
    entries: list[feeds.Entry] = []
    bumped: list[str] = []
    for uid, event in zip(uids, events, strict=True):
        found = reused.get(uid)
        if found is not None:
            entries.append(found)
            continue
        made = revised[uid]
        before = previous.get(uid)
        if event.calendar in deferred:
            # The stored SEQUENCE and LAST-MODIFIED, with this file's own fingerprints: the
            # renderer's cache keys on them, and must not keep these bytes for the newer file.
            revision = (
                made if before is None else replace(before, major=made.major, content=made.content)
            )
        else:
            revision = stored.get(uid, made)
            if revision == made:
                revision = made  # not the store's copy of the same: its strings are extra memory
        if before is not None and revision.sequence > before.sequence:
            bumped.append(uid)
        alarms = (
            _triggers(event, policies[event.calendar], options.defaults) if options.alarms else ()
        )
        entries.append(feeds.Entry(event, revision, alarms))
    return entries, bumped


def _rendered(
    calendars: tuple[Calendar, ...],
    headers: dict[str, feeds.Header],
    groups: dict[str, list[feeds.Entry]],
    renderer: feeds.Renderer,
    last: Publication | None,
) -> dict[str, feeds.Feed]:
    """Every feed: the one of all events, then each calendar's, whose events it copies.

    The calendars' feeds leave the renderer's cache on the full feed, so that the cache kept
    for the next start holds every event. A feed with the header and the very entries of one
    in ``last`` is that one: a reload renders the feeds that changed.
    """

    def render(name: str, *, remember: bool) -> feeds.Feed:
        if last is not None and last.headers.get(name) == headers[name]:
            before = last.groups.get(name, ())
            mine = groups[name]
            if len(before) == len(mine) and all(map(operator.is_, before, mine)):
                return last.rendered[name]
        return renderer.render(headers[name], groups[name], remember=remember)

    rendered = {ALL: render(ALL, remember=True)}
    for calendar in calendars:
        if len(calendars) == 1 and headers[calendar.id] == headers[ALL]:
            # The same header and events: the same bytes, so hold them once.
            rendered[calendar.id] = rendered[ALL]
        else:
            rendered[calendar.id] = render(calendar.id, remember=False)
    return rendered


def build(  # noqa: PLR0913 - what a publication is made of, and what it may not change
    calendars: tuple[Calendar, ...],
    options: Options,
    store: RevisionStore,
    renderer: feeds.Renderer,
    now: datetime,
    *,
    deferred: Collection[str] = (),
    last: Publication | None = None,
    shared: bool = False,
) -> Publication:
    """Revise every event against the store, save what changed, and render every feed.

    Events of a calendar in ``deferred`` (another instance holds a newer file of it) are
    served with their stored revision, if any, and change nothing in the store. Given the
    publication ``last`` built from the same store, events it holds unchanged are taken from
    it as they are, and feeds whose events are all unchanged too: the cost of a build follows
    what changed. A ``shared`` store (other instances write to it) is read whole all the same,
    and an entry whose stored revision moved on is revised again.
    """
    # The last build's order, with what changed put in its place: no sort of every event.
    order = in_start_order(calendars, [e.event for e in last.entries] if last else ())
    entries, bumped = _entries(
        order, calendars, options, store, now=now, deferred=deferred, last=last, shared=shared
    )
    headers = {ALL: _all_header(calendars, options.refresh)}
    groups: dict[str, list[feeds.Entry]] = {ALL: entries}
    for calendar in calendars:
        headers[calendar.id] = feeds.Header(
            calendar.name,
            calendar.description.strip(),
            options.refresh,
        )
        groups[calendar.id] = []
    for entry in entries:
        groups[entry.event.calendar].append(entry)
    rendered = _rendered(calendars, headers, groups, renderer, last)
    renderer.retain(entries)
    return Publication(
        calendars=calendars,
        entries=tuple(entries),
        rendered=rendered,
        headers=headers,
        built=now,
        renderer=renderer,
        bumped=tuple(bumped),
        options=options,
        deferred=frozenset(deferred),
        groups=groups,
    )
