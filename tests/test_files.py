"""Writing files safely: a file is replaced whole, or left as it was."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventwatch import files
from eventwatch.files import write_atomically

if TYPE_CHECKING:
    from pathlib import Path


def test_a_new_file_holds_the_data(tmp_path: Path) -> None:
    """A file that did not exist is created with exactly the bytes given."""
    path = tmp_path / "feed.ics"
    write_atomically(path, b"BEGIN:VCALENDAR\r\n")
    assert path.read_bytes() == b"BEGIN:VCALENDAR\r\n"


def test_the_old_file_is_replaced_whole(tmp_path: Path) -> None:
    """Shorter data over a longer file leaves nothing of the old one behind."""
    path = tmp_path / "feed.ics"
    path.write_bytes(b"old content, rather long")
    write_atomically(path, b"new")
    assert path.read_bytes() == b"new"


def test_the_file_is_replaced_by_a_rename_not_rewritten(tmp_path: Path) -> None:
    """The path gets a new inode, so a reader holding the old file reads it to its end."""
    path = tmp_path / "feed.ics"
    path.write_bytes(b"old")
    with path.open("rb") as reader:
        write_atomically(path, b"new")
        assert reader.read() == b"old"
    assert path.read_bytes() == b"new"


def test_the_data_is_on_disk_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The temporary file is fsync'd while the path still holds the old content."""
    path = tmp_path / "feed.ics"
    path.write_bytes(b"old")
    seen: list[bytes] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        seen.append(path.read_bytes())
        real_fsync(fd)

    monkeypatch.setattr(files.os, "fsync", fsync)
    write_atomically(path, b"new")
    assert seen == [b"old"]
    assert path.read_bytes() == b"new"


def test_the_file_is_readable_by_all_whatever_the_umask(tmp_path: Path) -> None:
    """The written file is rw-r--r--, so a web server running as another user can serve it."""
    path = tmp_path / "index.html"
    old = os.umask(0o077)
    try:
        write_atomically(path, b"<html>")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path) -> None:
    """When the path cannot be replaced the error is raised and the folder is as it was."""
    path = tmp_path / "taken"
    path.mkdir()
    (path / "inside").write_bytes(b"")
    with pytest.raises(OSError, match="Is a directory"):
        write_atomically(path, b"data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_an_interrupted_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt during the write leaves the old content and no temporary file."""
    path = tmp_path / "feed.ics"
    path.write_bytes(b"old")

    def interrupted(_fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["feed.ics"]


def test_a_missing_folder_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    """A path in a folder that does not exist raises FileNotFoundError; nothing is made."""
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "absent" / "feed.ics", b"data")
    assert list(tmp_path.iterdir()) == []


@given(
    st.lists(st.binary(max_size=64), max_size=8),
    st.sampled_from([0, 1, 10, 1000]),  # how large a join goes through the file in memory
    st.sampled_from([1, 7, 64, 1 << 20]),  # how large a batch of small parts is
)
def test_join_is_bytes_join(parts: list[bytes], threshold: int, batch: int) -> None:
    """``b"".join``'s bytes, whatever the parts, the way taken and the batches written.

    Parts of bytes or views, empty ones among them.
    """
    mixed = [memoryview(p) if n % 2 else p for n, p in enumerate(parts)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "THROUGH_MEMORY_FILE", threshold)
        patch.setattr(files, "BATCH", batch)
        assert files.join(mixed) == b"".join(parts)


def test_small_parts_are_written_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """100,000 small parts are some writes of a batch each, not 100,000 writes."""
    writes: list[int] = []
    real = os.write

    def counting(fd: int, data: bytes | memoryview) -> int:
        writes.append(len(data))
        return real(fd, data)

    monkeypatch.setattr(os, "write", counting)
    parts = [os.urandom(100) for _ in range(100_000)]  # 10 MB: through the file in memory
    assert files.join(parts) == b"".join(parts)
    assert len(writes) <= 10 * 1024 * 1024 // files.BATCH + 2


def test_a_large_join_goes_through_a_file_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed of some megabytes is copied by the kernel, the GIL released (not by bytes.join)."""
    calls: list[str] = []
    real = os.memfd_create

    def counting(name: str, flags: int = 0) -> int:
        calls.append(name)
        return real(name, flags)

    monkeypatch.setattr(os, "memfd_create", counting)
    big = os.urandom(files.THROUGH_MEMORY_FILE)
    parts = [memoryview(big)[:100], b"-", memoryview(big)[100:]]
    assert files.join(parts) == big[:100] + b"-" + big[100:]
    assert calls == ["eventwatch-join"]
    assert files.join([b"small"]) == b"small"
    assert calls == ["eventwatch-join"]  # a small one is bytes.join
