"""The encoded-event cache on disk: the last full feed and where each event sits in it.

A restart reads it back so that the first render after a restart copies events instead of
encoding them all again. It is only a cache: anything wrong with it means a cold render.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from eventwatch import __version__
from eventwatch.files import write_atomically

if TYPE_CHECKING:
    from pathlib import Path

    from eventwatch.feeds import Placement

FORMAT = 2  # 2: UTC times with a Z, escaped calendar names (VEVENTs cached by 1 are wrong)
BODY_FILE = "feed-cache.ics"
INDEX_FILE = "feed-cache.json"


def _encode(placement: Placement) -> list[Any]:
    (uid, content, sequence, modified, alarms), start, end, span = placement
    assert isinstance(modified, datetime)  # noqa: S101 - the key's shape (feeds._key)
    seconds = [a.total_seconds() for a in alarms]  # type: ignore[attr-defined]
    return [uid, content, sequence, modified.isoformat(), seconds, start, end, span]


def _decode(row: list[Any]) -> Placement:
    uid, content, sequence, modified, seconds, start, end, span = row
    alarms = tuple(timedelta(seconds=s) for s in seconds)
    key = (uid, content, sequence, datetime.fromisoformat(modified), alarms)
    return key, int(start), int(end), tuple(span) if span else None


def save(state_dir: Path, body: bytes, placements: list[Placement]) -> None:
    """Keep ``body`` and the events' places in it, each file replaced atomically."""
    head = {"format": FORMAT, "version": __version__, "sha256": hashlib.sha256(body).hexdigest()}
    # The same JSON as one ``json.dumps`` of the whole index, but a row at a time: one call
    # over 100,000 rows holds the GIL for 0.15 s, and the daemon saves this beside its loop.
    rows = ",".join(json.dumps(_encode(p), separators=(",", ":")) for p in placements)
    index = json.dumps(head, separators=(",", ":"))[:-1] + ',"events":[' + rows + "]}"
    write_atomically(state_dir / BODY_FILE, body)
    write_atomically(state_dir / INDEX_FILE, index.encode())


def load(state_dir: Path) -> tuple[bytes, list[Placement]] | None:
    """The cache kept by an earlier run of this version, or None if there is none usable."""
    try:
        body = (state_dir / BODY_FILE).read_bytes()
        index = json.loads((state_dir / INDEX_FILE).read_bytes())
        usable = (
            index.get("format") == FORMAT
            and index.get("version") == __version__
            and index.get("sha256") == hashlib.sha256(body).hexdigest()
        )
        if not usable:
            return None
        placements = [_decode(row) for row in index["events"]]
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if any(not 0 <= start <= end <= len(body) for _, start, end, _ in placements):
        return None
    return body, placements
