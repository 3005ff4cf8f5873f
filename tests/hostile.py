"""Things that are no calendar or settings file but carry a ``.toml`` name, and what each gives."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

TOO_LARGE = 64 * 1024 * 1024 + 1


def _loop(path: Path) -> None:
    path.symlink_to(path.name)


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _folder(path: Path) -> None:
    path.mkdir()


def _huge(path: Path) -> None:
    with path.open("wb") as file:
        file.truncate(TOO_LARGE)  # sparse: nothing is written, but it is this large


def _dangling(path: Path) -> None:
    path.symlink_to("nowhere.toml")


MAKERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "loop": (_loop, "cannot read: Too many levels of symbolic links"),
    "fifo": (_fifo, "cannot read: not a regular file but a FIFO"),
    "zero": (_zero, "cannot read: not a regular file but a character device"),
    "folder": (_folder, "cannot read: Is a directory"),
    "huge": (_huge, "cannot read: larger than 64 MiB"),
    "dangling": (_dangling, "cannot read: No such file or directory"),
}
"""Each kind of entry: how to make it at a path, and the message it must give."""


def make(kind: str, path: Path) -> str:
    """Make an entry of ``kind`` at ``path``; the message reading it must give."""
    maker, message = MAKERS[kind]
    maker(path)
    return message


def write_bytes_named(folder: Path, name: bytes, content: bytes) -> None:
    """Write a file whose name is raw bytes, which need not be UTF-8."""
    with open(os.path.join(os.fsencode(folder), name), "wb") as file:  # noqa: PTH118, PTH123 - a bytes path
        file.write(content)


@contextlib.contextmanager
def fifos_unblocked(folder: Path, after: float = 5.0) -> Iterator[None]:
    """Should a reader block on a FIFO in ``folder`` (the old behaviour), free it after a while.

    Opening the other end lets a blocked ``open`` return, so that a test fails rather than hangs.
    """

    def free() -> None:
        for entry in folder.iterdir():
            if entry.is_fifo():
                with contextlib.suppress(OSError):  # ENXIO: nobody is waiting, as it should be
                    os.close(os.open(entry, os.O_WRONLY | os.O_NONBLOCK))

    timer = threading.Timer(after, free)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
