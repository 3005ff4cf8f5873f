"""Reading TOML files and placing a field back on its line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from eventwatch import tomlfile
from eventwatch.errors import InvalidInputError

if TYPE_CHECKING:
    from pathlib import Path

TEXT = '''\
name = "X"                      # 1
description = """               # 2
[[events]]
id = "inside a string"
"""
timezone = "UTC"                # 6

[reminders]                     # 8
offsets = [                     # 9
  "P1D",                        # 10
  # a comment                   # 11
  "P7D",                        # 12
]
recipients = [{ address = "a@example.org" }]  # 14

[[events]]                      # 16
id = "a"                        # 17
participants = [                # 18
  { name = "A" },               # 19
  { name = "B" },               # 20
]

[[events]]                      # 23
id = "b"                        # 24
reminders.offsets = []          # 25

[[events]]                      # 27
[events.reminders]              # 28
all_day_at = "09:00"            # 29
"quoted key" = 1                # 30
'''


@pytest.fixture
def doc(tmp_path: Path) -> tomlfile.Document:
    """The sample file, read."""
    path = tmp_path / "sample.toml"
    path.write_text(TEXT, encoding="utf-8")
    return tomlfile.read(path)


@pytest.mark.parametrize(
    ("loc", "line"),
    [
        (("name",), 1),
        (("description",), 2),
        (("timezone",), 6),
        (("reminders",), 8),
        (("reminders", "offsets"), 9),
        (("reminders", "offsets", 0), 10),
        (("reminders", "offsets", 1), 12),
        (("reminders", "recipients", 0, "address"), 14),
        (("events", 0), 16),
        (("events", 0, "id"), 17),
        (("events", 0, "participants", 1, "name"), 20),
        (("events", 0, "title"), 16),
        (("events", 1, "id"), 24),
        (("events", 1, "reminders", "offsets"), 25),
        (("events", 2), 27),
        (("events", 2, "reminders", "all_day_at"), 29),
        (("events", 2, "reminders", "quoted key"), 30),
    ],
)
def test_line_of_each_shape(doc: tomlfile.Document, loc: tuple[str | int, ...], line: int) -> None:
    """Keys, sections, array tables, dotted keys and line-per-item arrays find their line."""
    assert doc.line_of(loc) == line


def test_keys_inside_strings_are_not_keys(doc: tomlfile.Document) -> None:
    """A multi-line string that looks like a table does not count as one."""
    assert doc.data["events"][0]["id"] == "a"
    assert len(doc.data["events"]) == 3
    assert doc.line_of(("events", 3)) is None


def test_unknown_location_has_no_line(doc: tomlfile.Document) -> None:
    """Nothing is invented for a key the file does not have."""
    assert doc.line_of(("server", "port")) is None


def test_syntax_error_gives_the_line(tmp_path: Path) -> None:
    """The position tomllib reports becomes the problem's line."""
    path = tmp_path / "bad.toml"
    path.write_text('a = 1\nb = "open\n', encoding="utf-8")
    with pytest.raises(InvalidInputError) as exc:
        tomlfile.read(path)
    (problem,) = exc.value.problems
    assert (problem.line, problem.field) == (2, "")
    assert problem.message.startswith("TOML syntax error: ")


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    """A folder where a file was expected is reported with the system's reason."""
    with pytest.raises(InvalidInputError) as exc:
        tomlfile.read(tmp_path)
    assert "cannot read: Is a directory" in str(exc.value)
