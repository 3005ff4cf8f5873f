"""Static export: the feeds and index page written to a folder, each file replaced atomically."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING

from eventwatch import pages
from eventwatch.errors import OperationError

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from eventwatch.publication import Publication


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    A web server reading ``path`` meanwhile sees the old file or the new one, never half.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # noqa: PTH101 - a path string from mkstemp
        os.replace(temporary, path)  # noqa: PTH105 - the same
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)  # noqa: PTH108 - the same
        raise


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
