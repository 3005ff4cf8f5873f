"""Static export: the feeds and index page written to a folder, each file replaced atomically."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eventwatch import pages
from eventwatch.errors import OperationError
from eventwatch.files import write_atomically

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from eventwatch.publication import Publication


def export(publication: Publication, out: Path, base_url: str, now: datetime) -> list[Path]:
    """Write ``all.ics``, one ``CALENDAR.ics`` per calendar, and ``index.html`` into ``out``."""
    files = {f"{name}.ics": feed.body for name, feed in publication.rendered.items()}
    files["index.html"] = pages.render(publication, base_url, now)
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in sorted(files.items()):
            write_atomically(out / name, data)
            written.append(out / name)
    except OSError as exc:
        raise OperationError(f"{exc.filename or out}: cannot write: {exc.strerror}") from exc
    return written
