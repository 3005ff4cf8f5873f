"""The encoded-event cache on disk: a restart renders from it, and a bad cache is ignored."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventwatch import feedcache, feeds, revisions
from eventwatch.models import Calendar

HEADER = feeds.Header("T", "", timedelta(hours=1))


def entries() -> list[feeds.Entry]:
    """A timed and an all-day event, with alarms, first revisions."""
    cal = Calendar.model_validate(
        {
            "id": "cal",
            "name": "Cal",
            "timezone": "Europe/Brussels",
            "events": [
                {
                    "id": "a",
                    "title": "A",
                    "start": datetime(2026, 5, 1, 10),
                    "end": datetime(2026, 5, 1, 11),
                },
                {"id": "b", "title": "B", "start": date(2026, 5, 2)},
            ],
        },
    )
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        feeds.Entry(e, revisions.revise(e, None, stamp), (timedelta(hours=-1),)) for e in cal.events
    ]


@pytest.fixture
def saved(tmp_path: Path) -> bytes:
    """A feed rendered cold, with its cache kept in ``tmp_path``."""
    renderer = feeds.Renderer()
    body = renderer.render(HEADER, entries()).body
    feedcache.save(tmp_path, body, renderer.placements(body))
    return body


def test_restart_renders_from_the_cache(
    tmp_path: Path,
    saved: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A renderer seeded from the cache gives the same bytes without encoding any event."""
    found = feedcache.load(tmp_path)
    assert found is not None
    renderer = feeds.Renderer()
    renderer.seed(*found)

    def refuse(entry: feeds.Entry) -> bytes:
        raise AssertionError(f"{entry.event.uid} was encoded again")

    monkeypatch.setattr(feeds, "_vevent", refuse)
    assert renderer.render(HEADER, entries()).body == saved


def test_changed_feed_file_is_ignored(tmp_path: Path, saved: bytes) -> None:
    """A cache whose feed bytes do not match their digest is not used."""
    (tmp_path / feedcache.BODY_FILE).write_bytes(saved.replace(b"SUMMARY:A", b"SUMMARY:Z"))
    assert feedcache.load(tmp_path) is None


def test_other_version_is_ignored(tmp_path: Path, saved: bytes) -> None:
    """A cache written by another version of eventwatch is not used."""
    del saved
    index_path = tmp_path / feedcache.INDEX_FILE
    index = json.loads(index_path.read_text())
    index["version"] = "0.0.0"
    index_path.write_text(json.dumps(index))
    assert feedcache.load(tmp_path) is None


@pytest.mark.parametrize("damage", ["{not json", '{"format": 1}', ""])
def test_damaged_index_is_ignored(tmp_path: Path, saved: bytes, damage: str) -> None:
    """A truncated or malformed index means a cold render, not a crash."""
    del saved
    (tmp_path / feedcache.INDEX_FILE).write_text(damage)
    assert feedcache.load(tmp_path) is None


def test_no_cache_is_none(tmp_path: Path) -> None:
    """A first start has no cache."""
    assert feedcache.load(tmp_path) is None


@given(
    st.lists(
        st.tuples(
            st.text(),  # the UID, any text: quotes, backslashes, lone surrogates aside
            st.integers(0, 10**6),
            st.lists(st.integers(-(10**6), 10**6).map(lambda s: timedelta(seconds=s)), max_size=3),
            st.one_of(
                st.none(),
                st.tuples(st.text(min_size=1), st.integers(1, 9999), st.integers(1, 9999)),
            ),
        ),
        max_size=20,
    ),
)
def test_the_index_is_the_json_of_the_whole(rows: list[Any]) -> None:
    """Written a row at a time, the index is ``json.dumps`` of all of it, and reads back."""
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    placements = [
        ((uid, "c" * 64, sequence, stamp, tuple(alarms)), 0, 0, span)
        for uid, sequence, alarms, span in rows
        if not any(0xD800 <= ord(c) <= 0xDFFF for c in uid)
    ]
    with tempfile.TemporaryDirectory() as folder:
        feedcache.save(Path(folder), b"", placements)
        written = (Path(folder) / feedcache.INDEX_FILE).read_bytes()
        assert feedcache.load(Path(folder)) == (b"", placements)
    parsed = json.loads(written)
    assert list(parsed) == ["format", "version", "sha256", "events"]
    assert written == json.dumps(parsed, separators=(",", ":")).encode()
