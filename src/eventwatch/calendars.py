"""The only reader of ``calendars/*.toml``: calendar files in, validated records out."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from eventwatch import problems, tomlfile
from eventwatch.errors import CalendarError, InvalidInputError, Problem
from eventwatch.models import Calendar, Event, derived_fields

if TYPE_CHECKING:
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
    calendar_id = doc.path.stem
    found = _derived_keys(doc)
    data: dict[str, Any] = {**doc.data, "id": calendar_id}
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
    stamp next time, and is read again then.
    """

    files: dict[Path, tuple[Stamp, Calendar, str]] = field(default_factory=dict)


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
    learnt: dict[Path, tuple[Stamp, Calendar, str]] = {}
    for path in paths:
        stamp = _stamp(path)
        before = known.files.get(path) if known is not None else None
        if before is not None and stamp is not None and before[0] == stamp:
            _, calendar, digest = before
        else:
            try:
                doc = tomlfile.read(path)
                calendar = parse(doc)
            except InvalidInputError as exc:
                found.extend(exc.problems)
                continue
            digest = hashlib.sha256(doc.text.encode()).hexdigest()
        calendars.append(calendar)
        digests[calendar.id] = digest
        if stamp is not None:
            learnt[path] = (stamp, calendar, digest)
    if found:
        raise CalendarError(found)
    if known is not None:
        known.files = learnt
    return tuple(calendars), digests
