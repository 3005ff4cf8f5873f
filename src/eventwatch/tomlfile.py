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
_KEY = re.compile(r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=\s*(.*)")
_DECODE_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def display(path: Path) -> str:
    """A path as a person should read it in a message: relative to here when below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _dotted(text: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.split(r"\.(?=(?:[^\"']|\"[^\"]*\"|'[^']*')*$)", text)]


def _index_lines(text: str) -> dict[Loc, int]:
    """Map every key, table header and line-per-element array item to its line number.

    tomllib gives no positions, so this reads the few line shapes a calendar or settings
    file uses; it only places errors, the data itself always comes from tomllib.
    """
    lines: dict[Loc, int] = {}
    counts: dict[Loc, int] = {}
    table: Loc = ()
    closing = ""  # the delimiter of a multi-line string being skipped
    array: Loc | None = None  # the key of a multi-line array being read
    items = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if closing:
            if line.count(closing) % 2:
                closing = ""
            continue
        stripped = line.strip()
        if array is not None:
            if stripped.startswith("]"):
                array = None
            elif stripped and not stripped.startswith("#"):
                lines.setdefault((*array, items), number)
                items += 1
            continue
        header = _HEADER.fullmatch(line)
        if header:
            path: list[str | int] = []
            parts = _dotted(header.group(2))
            for n, part in enumerate(parts):
                path.append(part)
                if header.group(1) == "[[" and n == len(parts) - 1:
                    counts[tuple(path)] = counts.get(tuple(path), -1) + 1
                if tuple(path) in counts:
                    path.append(counts[tuple(path)])
            table = tuple(path)
            lines.setdefault(table, number)
            continue
        key = _KEY.fullmatch(line)
        if not key:
            continue
        where = (*table, *_dotted(key.group(1)))
        lines.setdefault(where, number)
        value = key.group(2).split("#", 1)[0].strip()
        for delimiter in ('"""', "'''"):
            if value.count(delimiter) % 2:
                closing = delimiter
        if value == "[":
            array, items = where, 0
    return lines


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
