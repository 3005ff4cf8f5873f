"""Pure: an event's revision, the SEQUENCE and LAST-MODIFIED that tell clients it changed.

RFC 5545 asks SEQUENCE to rise when a change matters to attendees (time, place, title,
status) and only then; LAST-MODIFIED and DTSTAMP follow any change of content. Both are
derived by comparing fingerprints of the event with the revision stored last time.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eventwatch.models import Event


@dataclass(frozen=True, slots=True)
class Revision:
    """What was last published of one event: its sequence, fingerprints and when it changed."""

    uid: str
    sequence: int
    major: str
    content: str
    modified: datetime


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprints(event: Event) -> tuple[str, str]:
    """The digest of what SEQUENCE follows, and the digest of the whole event."""
    major = _digest(
        [
            event.start.isoformat(),
            event.end.isoformat(),
            event.timezone,
            event.title,
            event.location,
            event.status.value,
        ],
    )
    return major, _digest(event.model_dump(mode="json"))


def revise(event: Event, previous: Revision | None, now: datetime) -> Revision:
    """The event's revision now: unchanged, touched (new content) or bumped (new time or place).

    ``now`` is kept to the second, the precision of iCalendar date-times, so that a revision
    renders the same after it is stored and read back.
    """
    major, content = fingerprints(event)
    stamp = now.astimezone(UTC).replace(microsecond=0)
    if previous is None:
        return Revision(event.uid, 0, major, content, stamp)
    if previous.major != major:
        return Revision(event.uid, previous.sequence + 1, major, content, stamp)
    if previous.content != content:
        return Revision(event.uid, previous.sequence, major, content, stamp)
    return previous
