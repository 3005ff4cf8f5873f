"""The only reader of ``calendars/*.toml``: calendar files in, validated records out."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from eventwatch import __version__, problems, tomlfile
from eventwatch.errors import CalendarError, InvalidInputError, Problem
from eventwatch.models import Calendar, Event, derived_fields

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path


def files(directory: Path) -> list[Path]:
    """The calendar files in ``directory``, in name order (hidden and editor files skipped)."""
    return sorted(p for p in directory.glob("*.toml") if not p.name.startswith((".", "#")))


def _derived_keys(doc: tomlfile.Document) -> list[Problem]:
    """Keys the reader fills in itself; a file that sets them has a typo or a misunderstanding."""
    found = [
        Problem(
            doc.name, key, "unknown key (the calendar's id is its file name)", doc.line_of((key,))
        )
        for key in derived_fields(Calendar)
        if key in doc.data
    ]
    events = doc.data.get("events")
    for n, event in enumerate(events if isinstance(events, list) else []):
        for key in derived_fields(Event):
            if isinstance(event, dict) and key in event:
                loc = ("events", n, key)
                message = "unknown key (an event belongs to the calendar of its file)"
                found.append(Problem(doc.name, problems.field_path(loc), message, doc.line_of(loc)))
    return found


def parse(doc: tomlfile.Document) -> Calendar:
    """Validate one parsed calendar file; raises ``CalendarError`` with every problem found."""
    return _parse(doc, {**doc.data, "id": doc.path.stem})


TableKey = bytes
"""The digest of one event's table with what it inherits from its calendar (``_table_keys``)."""


def _table_keys(data: dict[str, Any]) -> list[TableKey | None]:
    """A digest of each event table of ``data``, with all that its validation depends on.

    An event is validated from its own table, its calendar's id and default zone, by this
    release: equal digests, equal events. ``repr`` spells every TOML value apart (a string
    from a number, a date from a date-time, keys in their order), and None is for what is not
    a table.
    """
    events = data.get("events")
    if not isinstance(events, list):
        return []
    inherited = (__version__, data.get("id"), data.get("timezone"))
    return [
        hashlib.blake2b(repr((inherited, e)).encode(), digest_size=16).digest()
        if isinstance(e, dict)
        else None
        for e in events
    ]


def _parse_reusing(
    doc: tomlfile.Document, reusable: Mapping[TableKey, Event]
) -> tuple[Calendar, dict[TableKey, Event]]:
    """``parse``, taking each event whose table is in ``reusable`` as it is, not validated.

    The calendar's own checks (repeated ids, references) still see every event. Returns the
    events by table digest, for the next time.
    """
    data: dict[str, Any] = {**doc.data, "id": doc.path.stem}
    keys = _table_keys(data)
    if keys:
        data["events"] = [
            reusable.get(key, table) if key is not None else table
            for key, table in zip(keys, data["events"], strict=True)
        ]
    calendar = _parse(doc, data)
    events = {
        key: event for key, event in zip(keys, calendar.events, strict=True) if key is not None
    }
    return calendar, events


def _parse(doc: tomlfile.Document, data: dict[str, Any]) -> Calendar:
    calendar_id = doc.path.stem
    found = _derived_keys(doc)
    try:
        calendar = Calendar.model_validate(data)
    except ValidationError as exc:

        def where(loc: problems.Loc) -> tuple[str, int | None]:
            return doc.name, doc.line_of(loc)

        for problem in problems.problems(exc, Calendar, where):
            if problem.field == "id":
                # The id comes from the file name, so say so rather than point at a key; and
                # show the name as printed elsewhere, not as Python spells odd bytes in it.
                shown = f"'{tomlfile.printable(calendar_id)}'"
                message = problem.message.replace(repr(calendar_id), shown)
                problem = Problem(doc.name, "file name", message)  # noqa: PLW2901
            found.append(problem)
    if found:
        raise CalendarError(found)
    return calendar


Stamp = tuple[int, int, int, int, int]
"""What identifies one version of a file without reading it: device, inode, size, mtime, ctime."""


@dataclass
class Known:
    """The calendar files read last time, reused while a file's stamp is unchanged.

    The stamp is taken before the file is read: a file changed while it is read has a newer
    stamp next time, and is read again then. A file changed within ``RACY`` of being read is
    read again next time whatever its stamp: a second write in the same tick of the file
    system's clock, of the same size, would leave the stamp as it was. Changed means its
    status change time (ctime), which no tool can set back, unlike the modification time.
    """

    files: dict[Path, tuple[Stamp | None, Calendar, str, dict[TableKey, Event]]] = field(
        default_factory=dict
    )
    clock: Callable[[], int] = time.time_ns
    """Now, in nanoseconds since the epoch, as file times count."""
    """By path: the file's stamp, its calendar, its SHA-256, and its events by table digest
    (an edited file validates only the tables that changed)."""


RACY = 2_000_000_000
"""Nanoseconds: a file changed this recently may change again unseen (coarse clocks: 1-2 s)."""


def _stamp(path: Path) -> Stamp | None:
    try:
        found = path.stat()
    except OSError:
        return None  # reading it will say why
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def load(directory: Path) -> tuple[Calendar, ...]:
    """Read every calendar file in ``directory``; a broken file never hides another's errors."""
    return read(directory)[0]


def read(
    directory: Path, known: Known | None = None
) -> tuple[tuple[Calendar, ...], dict[str, str]]:
    """``load``, and the SHA-256 of each calendar's file by calendar id.

    Instances sharing a ledger compare these to tell which of them holds the newer file.
    Files ``known`` holds unchanged are not read again; ``known`` learns the others.
    """
    shown = tomlfile.display(directory)
    if not directory.is_dir():
        raise CalendarError([Problem(shown, "", "calendars folder does not exist")])
    paths = files(directory)
    if not paths:
        raise CalendarError([Problem(shown, "", "no calendar files (*.toml) in this folder")])
    calendars: list[Calendar] = []
    digests: dict[str, str] = {}
    found: list[Problem] = []
    learnt: dict[Path, tuple[Stamp | None, Calendar, str, dict[TableKey, Event]]] = {}
    for path in paths:
        stamp = _stamp(path)
        before = known.files.get(path) if known is not None else None
        events: dict[TableKey, Event] = {}
        if before is not None and stamp is not None and before[0] == stamp:
            _, calendar, digest, events = before
        else:
            try:
                doc = tomlfile.read(path)
                if known is None:
                    calendar = parse(doc)
                else:
                    calendar, events = _parse_reusing(doc, before[3] if before else {})
            except InvalidInputError as exc:
                found.extend(exc.problems)
                continue
            digest = hashlib.sha256(doc.text.encode()).hexdigest()
        calendars.append(calendar)
        digests[calendar.id] = digest
        if known is not None and stamp is not None and known.clock() - max(stamp[3:]) < RACY:
            stamp = None  # read again next time (see ``Known``)
        learnt[path] = (stamp, calendar, digest, events)
    if found:
        raise CalendarError(found)
    if known is not None:
        known.files = learnt
    return tuple(calendars), digests
