"""A TOML file a person wrote: its data, and the line each key is on."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventwatch.errors import InvalidInputError, Problem

Loc = tuple[str | int, ...]

_HEADER = re.compile(r"\s*(\[\[?)\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?")
_KEY = re.compile(
    r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=\s*(.*)"
)
_DECODE_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def display(path: Path) -> str:
    """A path as a person should read it in a message: relative to here when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _dotted(text: str) -> list[str]:
    return [
        part.strip().strip("\"'")
        for part in re.split(r"\.(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", text)
    ]


class _LineIndex:
    """Every key, table header and line-per-element array item, with its line number.

    tomllib gives no positions, so this reads the few line shapes a calendar or settings
    file uses; it only places errors, the data itself always comes from tomllib.
    """

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}
        self._counts: dict[Loc, int] = {}  # tables of each [[array]] seen so far
        self._table: Loc = ()
        self._closing = ""  # the delimiter of a multi-line string being skipped
        self._array: Loc | None = None  # the key of a multi-line array being read
        self._items = 0

    def read(self, number: int, line: str) -> None:
        """Take in one line of the file."""
        if self._closing:
            if line.count(self._closing) % 2:
                self._closing = ""
        elif self._array is not None:
            self._array_item(number, line.strip())
        elif header := _HEADER.fullmatch(line):
            self._header(number, header.group(1) == "[[", _dotted(header.group(2)))
        elif key := _KEY.fullmatch(line):
            self._key(number, _dotted(key.group(1)), key.group(2).split("#", 1)[0].strip())

    def _array_item(self, number: int, stripped: str) -> None:
        if stripped.startswith("]"):
            self._array = None
        elif stripped and not stripped.startswith("#") and self._array is not None:
            self.lines.setdefault((*self._array, self._items), number)
            self._items += 1

    def _header(self, number: int, is_array: bool, parts: list[str]) -> None:  # noqa: FBT001
        path: list[str | int] = []
        for n, part in enumerate(parts):
            path.append(part)
            if is_array and n == len(parts) - 1:
                self._counts[tuple(path)] = self._counts.get(tuple(path), -1) + 1
            if tuple(path) in self._counts:
                path.append(self._counts[tuple(path)])
        self._table = tuple(path)
        self.lines.setdefault(self._table, number)

    def _key(self, number: int, parts: list[str], value: str) -> None:
        where = (*self._table, *parts)
        self.lines.setdefault(where, number)
        for delimiter in ('"""', "'''"):
            if value.count(delimiter) % 2:
                self._closing = delimiter
        if value == "[":
            self._array, self._items = where, 0


def _index_lines(text: str) -> dict[Loc, int]:
    index = _LineIndex()
    for number, line in enumerate(text.splitlines(), start=1):
        index.read(number, line)
    return index.lines


@dataclass(frozen=True)
class Document:
    """A parsed TOML file with a way back from a field to its line."""

    path: Path
    text: str
    data: dict[str, Any]
    _lines: dict[Loc, int] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The file's name as messages show it."""
        return display(self.path)

    def line_of(self, loc: Loc) -> int | None:
        """The line of ``loc`` or of its nearest enclosing key, if it can be known."""
        if not self._lines:
            self._lines.update(_index_lines(self.text))
        for end in range(len(loc), 0, -1):
            if loc[:end] in self._lines:
                return self._lines[loc[:end]]
        return None


def read(path: Path) -> Document:
    """Read and parse one TOML file.

    Raises ``InvalidInputError`` naming the file (and the line of a syntax error) when it
    cannot be read, is not UTF-8 or is not TOML.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = Problem(display(path), "", f"cannot read: {exc.strerror}")
        raise InvalidInputError([problem]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = Problem(display(path), "", f"not UTF-8 text: {exc.reason}")
        raise InvalidInputError([problem]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _DECODE_LINE.search(str(exc))
        message = _DECODE_LINE.sub("", str(exc)).strip()
        line = int(found.group(1)) if found else None
        problem = Problem(display(path), "", f"TOML syntax error: {message}", line)
        raise InvalidInputError([problem]) from exc
    return Document(path=path, text=text, data=data)
