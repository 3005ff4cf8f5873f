"""Any calendar or settings file is either read or refused with problems of the one shape.

Two kinds of input: TOML documents made up from random keys and values (the names the records
know, and any text), written out by a small writer here, and the shipped files with lines
deleted, doubled or swapped, characters and bytes changed, text inserted, or cut short. Whatever
the input, the readers return records or raise the project's own ``InvalidInputError``, and each
problem prints as ``FILE:LINE: field: message`` or ``FILE: message`` on one line.
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import tempfile
import tomllib
from datetime import date, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypothesis
from hypothesis import given
from hypothesis import strategies as st

from eventwatch import calendars, problems, settings, tomlfile
from eventwatch.errors import InvalidInputError
from eventwatch.models import Calendar

from .conftest import SHIPPED_CALENDARS, SHIPPED_CONFIG

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from pydantic import BaseModel

# --- a small TOML writer ----------------------------------------------------------------------


def _string(text: str) -> str:
    r"""A basic string: quotes and backslashes escaped, control characters as ``\uXXXX``."""
    out = "".join(
        "\\" + c if c in '"\\' else (f"\\u{ord(c):04x}" if c < " " or c == "\x7f" else c)
        for c in text
    )
    return f'"{out}"'


def _value(value: object) -> str:  # noqa: PLR0911 - a return for each kind of value reads best
    """One value, inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, date | time):  # datetime too
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_string(k)} = {_value(v)}" for k, v in value.items()) + "}"


def _is_table_array(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def write(document: dict[str, Any]) -> str:
    """The document as TOML: plain keys, then tables as ``[t]`` and lists of them as ``[[t]]``."""
    lines = [
        f"{_string(k)} = {_value(v)}"
        for k, v in document.items()
        if not isinstance(v, dict) and not _is_table_array(v)
    ]
    for key, value in document.items():
        tables = [value] if isinstance(value, dict) else value if _is_table_array(value) else []
        for table in tables:
            lines.append(f"[{_string(key)}]" if isinstance(value, dict) else f"[[{_string(key)}]]")
            lines.extend(f"{_string(k)} = {_value(v)}" for k, v in table.items())
    return "".join(f"{line}\n" for line in lines)


# --- strategies ---------------------------------------------------------------------------------


def _vocabulary(model: type[BaseModel]) -> list[str]:
    """Every key the record and those inside it accept, as files spell them."""
    found: set[str] = set()
    stack: list[tuple[str | int, ...]] = [()]
    while stack:
        loc = stack.pop()
        for key in problems.allowed_keys(model, loc):
            if key not in found and len(loc) < 6:
                found.add(key)
                stack.append((*loc, key, 0))
    return sorted(found)


KEYS = st.one_of(
    st.sampled_from(sorted({*_vocabulary(Calendar), *_vocabulary(settings.Settings), "id"})),
    st.text(max_size=12),
)
"""A key the records know, or any text."""

OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))

SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.text(),
    st.sampled_from(
        ["P1D", "PT2H", "P1M", "Europe/Brussels", "UTC", "09:00", "a@example.org", "smtp", "x"]
    ),
    st.dates(),
    st.times(),
    st.datetimes(),
    st.datetimes(timezones=OFFSETS),
)
"""Any value TOML has; text of any Unicode, and some strings the records look for."""

VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=16,
)

DOCUMENTS = st.dictionaries(KEYS, VALUES, max_size=8)
"""Any TOML document."""

EVENTS = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["a", "b", "Bad id"]) | st.text(max_size=5), "title": SCALARS},
        optional=dict.fromkeys(("start", "end", "timezone", "reminders", "participants"), VALUES),
    ),
    max_size=3,
)
CALENDARS = st.fixed_dictionaries(
    {"name": SCALARS, "timezone": st.sampled_from(["Europe/Brussels", "UTC", "Mars/Olympus"])},
    optional={"events": EVENTS, "reminders": VALUES, "description": SCALARS},
)
"""Documents shaped like a calendar, so that validation reaches into events."""

CHARACTERS = st.characters(exclude_categories=("Cs",))
"""Any character a UTF-8 file can hold."""

TOML_BITS = st.sampled_from(
    ["[", "]", "[[", "]]", "{", "}", "=", ".", ",", '"', "'", '"""', "'''", "#", "\n", " ", "\\"]
)
RAW = st.lists(TOML_BITS | st.sampled_from(["a", "1", "events", "2026-01-01"]) | CHARACTERS)
"""Text built from TOML's punctuation, names and any character."""

LINE_OPS = st.one_of(
    st.tuples(st.sampled_from(["delete", "duplicate", "truncate"]), st.integers(0, 10**6)),
    st.tuples(st.just("swap"), st.integers(0, 10**6), st.integers(0, 10**6)),
    st.tuples(st.just("flip"), st.integers(0, 10**6), CHARACTERS),
    st.tuples(st.just("byte"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), RAW.map("".join)),
)
MUTATIONS = st.lists(LINE_OPS, min_size=1, max_size=4)
"""Edits a person (or a disk) might make to a good file."""


def mutate(original: bytes, edits: list[tuple[Any, ...]]) -> bytes:
    """``original`` with each edit applied in turn; positions wrap around the current length."""
    data = original
    for kind, where, *more in edits:
        lines = data.splitlines(keepends=True) or [b""]
        n = where % len(lines)
        if kind == "delete":
            del lines[n]
        elif kind == "duplicate":
            lines.insert(n, lines[n])
        elif kind == "swap":
            m = more[0] % len(lines)
            lines[n], lines[m] = lines[m], lines[n]
        data = b"".join(lines)
        at = where % (len(data) + 1)
        if kind == "truncate":
            data = data[:at]
        elif kind == "flip":
            data = data[:at] + str(more[0]).encode() + data[at + 1 :]
        elif kind == "byte":
            data = data[:at] + bytes([more[0]]) + data[at + 1 :]
        elif kind == "insert":
            data = data[:at] + str(more[0]).encode() + data[at:]
    return data


# --- the property -------------------------------------------------------------------------------

# Each example takes a few milliseconds: several times the profile's count still runs in seconds.
TWICE = hypothesis.settings(max_examples=2 * hypothesis.settings.default.max_examples)
FIVE_TIMES = hypothesis.settings(max_examples=5 * hypothesis.settings.default.max_examples)

FIELD = r"(?:file name|[A-Za-z0-9_-]+(?:\[[0-9]+\]|\.[A-Za-z0-9_-]+)*)"


@contextlib.contextmanager
def site() -> Iterator[Path]:
    """A fresh folder below the current one, so that files are named relative to it."""
    root = Path(tempfile.mkdtemp(dir=Path.cwd()))
    try:
        (root / "calendars").mkdir()
        (root / "config").mkdir()
        yield root
    finally:
        shutil.rmtree(root)


def refused_in_shape(load: Callable[[], object], path: Path) -> None:
    """``load`` succeeds, or raises ``InvalidInputError`` whose problems each name ``path``.

    Each problem is one line, ``FILE:LINE: field: message`` or ``FILE: message``, and its line,
    when given, is a line of the file.
    """
    try:
        load()
    except InvalidInputError as exc:
        found = exc.problems
    else:
        return
    name = tomlfile.display(path)
    shape = re.compile(rf"{re.escape(name)}(?::[1-9][0-9]*)?: (?:{FIELD}: )?\S[^\n]*")
    lines = path.read_bytes().count(b"\n") + 1
    assert found
    for problem in found:
        assert shape.fullmatch(str(problem)), str(problem)
        assert problem.source == name
        assert problem.line is None or 1 <= problem.line <= lines, problem


class TestMadeUpDocuments:
    """Documents from random keys and values, written as TOML."""

    @TWICE
    @given(document=DOCUMENTS | CALENDARS)
    def test_calendar(self, document: dict[str, Any]) -> None:
        """Any document as a calendar file is a calendar or problems in shape."""
        text = write(document)
        assert tomllib.loads(text) == document  # the writer writes what it was given
        with site() as root:
            path = root / "calendars" / "fuzz.toml"
            path.write_text(text, encoding="utf-8")
            refused_in_shape(lambda: calendars.load(path.parent), path)

    @TWICE
    @given(document=DOCUMENTS)
    def test_settings(self, document: dict[str, Any]) -> None:
        """Any document as a settings file is settings or problems in shape."""
        with site() as root:
            path = root / "config" / "eventwatch.toml"
            path.write_text(write(document), encoding="utf-8")
            refused_in_shape(lambda: settings.load(path), path)

    @FIVE_TIMES
    @given(text=RAW.map("".join))
    def test_raw_text(self, text: str) -> None:
        """Text made of TOML's punctuation is read or refused in shape, as either kind of file."""
        with site() as root:
            calendar = root / "calendars" / "raw.toml"
            config = root / "config" / "eventwatch.toml"
            for path in (calendar, config):
                path.write_text(text, encoding="utf-8")
            refused_in_shape(lambda: calendars.load(calendar.parent), calendar)
            refused_in_shape(lambda: settings.load(config), config)


class TestMutatedShippedFiles:
    """The shipped files, edited at random."""

    @FIVE_TIMES
    @given(edits=MUTATIONS)
    def test_calendar(self, edits: list[tuple[Any, ...]]) -> None:
        """The NATO calendar, edited, is a calendar or problems in shape."""
        original = (SHIPPED_CALENDARS / "nato-2026.toml").read_bytes()
        with site() as root:
            path = root / "calendars" / "nato-2026.toml"
            path.write_bytes(mutate(original, edits))
            refused_in_shape(lambda: calendars.load(path.parent), path)

    @FIVE_TIMES
    @given(edits=MUTATIONS)
    def test_settings(self, edits: list[tuple[Any, ...]]) -> None:
        """The shipped settings, edited, are settings or problems in shape."""
        original = SHIPPED_CONFIG.read_bytes()
        with site() as root:
            path = root / "config" / "eventwatch.toml"
            path.write_bytes(mutate(original, edits))
            refused_in_shape(lambda: settings.load(path), path)
