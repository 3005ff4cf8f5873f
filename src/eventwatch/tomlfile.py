"""A TOML file a person wrote: its data, and the line each key is on."""

from __future__ import annotations

import errno
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eventwatch.errors import InvalidInputError, Problem

Loc = tuple[str | int, ...]

MAX_DEPTH = 32
"""How deep tables, arrays and the parts of dotted keys may nest: far more than any calendar or
settings file needs, few enough that no parser recurses too deep or slows down on them."""

MAX_BYTES = 64 * 1024 * 1024
"""The largest file read; anything larger is refused, so that no file can exhaust memory."""

TOO_DEEP = (
    f"nested more than {MAX_DEPTH} levels deep (tables, arrays and dotted keys inside each "
    "other); that is the most allowed"
)
"""The problem with any input that nests deeper than ``MAX_DEPTH``."""

# Possessive quantifiers (++, *+) throughout: a line that does not match fails in one pass,
# never by backtracking, or a long key or a long run of blanks would make reading quadratic.
# For the same reason a multi-line string never closed runs to the end of the text, as a
# parser reads it: otherwise every later opening quote would scan to the end again.
_PART = r"""[A-Za-z0-9_-]++|"(?:[^"\\\n]|\\.)*+"|'[^'\n]*+'"""
_DOT = r"[ \t]*+\.[ \t]*+"
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_KEY_PARTS = rf"(?:{_PART})(?:{_DOT}(?:{_PART}))*+"
_HEADER = re.compile(rf"[ \t]*+(\[\[?)[ \t]*+({_KEY_PARTS})[ \t]*+\]\]?[ \t]*+(?:#.*)?")
_KEY = re.compile(rf"[ \t]*+({_KEY_PARTS})[ \t]*+=[ \t]*+(.*)")
_DECODE_LINE = re.compile(r"\(at line (\d+), column \d+\)")

# The nesting tomllib would build, seen before it runs: it recurses on each bracket and is
# quadratic in the parts of a dotted key, so such input must never reach it.
_STRUCTURE = re.compile(
    rf"""
    \#[^\n]*+                                               # a comment
    | "{{3}}(?:[^\\]|\\.?)*?(?:"{{3}}(?!")|\Z)                # multi-line strings, an
    | '{{3}}.*?(?:'{{3}}(?!')|\Z)                            # unclosed one to the end
    | (?P<deep>(?:(?:{_PART}){_DOT}){{{MAX_DEPTH}}}(?:{_PART}))  # a key of too many parts
    | {_KEY_PARTS}                                          # any other key, string or value
    | (?P<open>[\[{{])
    | (?P<close>[\]}}])
    """,
    re.VERBOSE | re.DOTALL,
)


# The same, quicker and a little less exact: brackets, with strings and comments skipped (a
# lone quote taken as text). It decides only whether ``too_deep_line`` runs before the parse.
_SKIPPED = (
    r"(?:[^\"'\#\[\]{}]++"  # anything else
    r"|\"{3}(?:[^\\]|\\.?)*?(?:\"{3}(?!\")|\Z)|'{3}.*?(?:'{3}(?!')|\Z)"  # multi-line
    r"|\"[^\"\\\n]*+(?:\\.[^\"\\\n]*+)*+\"|'[^'\n]*+'"  # strings on one line
    r"|\#[^\n]*+|[\"'])*+"  # a comment, a lone quote
)
_BRACKET = re.compile(_SKIPPED + r"([\[\]{}])", re.DOTALL)


def display(path: Path) -> str:
    """A path as a person should read it in a message: relative to here when below it.

    The file itself is not resolved (it may be a symbolic link, even a loop), and its name is
    made ``printable``.
    """
    try:
        shown = str((path.parent.resolve() / path.name).relative_to(Path.cwd()))
    except (OSError, RuntimeError, ValueError):  # RuntimeError: a symbolic link loop
        shown = str(path)
    return printable(shown)


def printable(name: str) -> str:
    r"""A name (of a file, a key) on one line: bytes not UTF-8 and unprintable characters escaped.

    A byte that is not UTF-8 came in as a lone surrogate and goes out as ``\xff``.
    """
    try:
        text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no undecodable byte stands for
        text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def key_text(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted, and on one line."""
    if _BARE.fullmatch(key):
        return key
    return '"' + printable(key.replace("\\", "\\\\").replace('"', '\\"')) + '"'


def _dotted(text: str) -> list[str]:
    return [_unquoted(p) for p in re.findall(_PART, text)]


def _unquoted(part: str) -> str:
    """One part of a key as tomllib has it: quotes off, escapes of a basic string undone."""
    if part.startswith('"') and "\\" in part:
        try:
            return str(tomllib.loads(f"k = {part}")["k"])
        except tomllib.TOMLDecodeError:
            return part[1:-1]
    return part[1:-1] if part[0] in "\"'" else part


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
            # The tables a header names on its way are made by it, so they are on its line.
            self.lines.setdefault(tuple(path), number)
        self._table = tuple(path)

    def _key(self, number: int, parts: list[str], value: str) -> None:
        where = (*self._table, *parts)
        for end in range(len(self._table) + 1, len(where) + 1):
            self.lines.setdefault(where[:end], number)  # ``a.b.c = 1`` makes ``a`` and ``a.b``
        for delimiter in ('"""', "'''"):
            if value.count(delimiter) % 2:
                self._closing = delimiter
        if value == "[":
            self._array, self._items = where, 0


def _index_lines(text: str) -> dict[Loc, int]:
    index = _LineIndex()
    # Only LF ends a TOML line (CRLF too); splitlines() would also split at U+2028, U+0085 and
    # the like, which may stand in strings, and every line number after them would be wrong.
    for number, line in enumerate(text.split("\n"), start=1):
        index.read(number, line.removesuffix("\r"))
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


_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def read_bytes(path: Path) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``MAX_BYTES``.

    Opened without blocking and checked once open, so that a FIFO, a device or a folder with a
    file's name is refused rather than waited on or read forever. Raises ``OSError`` whose
    ``strerror`` says why, in words fit for a message.
    """
    too_large = OSError(errno.EFBIG, f"larger than {MAX_BYTES >> 20} MiB")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        status = os.fstat(fd)
        if stat.S_ISDIR(status.st_mode):
            raise OSError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(status.st_mode):
            kind = _KINDS.get(stat.S_IFMT(status.st_mode), "a special file")
            raise OSError(errno.EINVAL, f"not a regular file but {kind}")
        if status.st_size > MAX_BYTES:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        # Bounded by what is read too, not only by the size given: the file may grow meanwhile.
        while chunk := os.read(fd, min(1 << 20, MAX_BYTES + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BYTES:
                raise too_large
        return b"".join(chunks)
    finally:
        os.close(fd)


def too_deep_line(text: str) -> int | None:
    """The line where ``text`` first nests deeper than ``MAX_DEPTH``, if it does."""
    depth = 0
    for token in _STRUCTURE.finditer(text):
        if token["open"]:
            depth += 1
        elif token["close"]:
            depth = max(depth - 1, 0)
        if token["deep"] or depth > MAX_DEPTH:
            return text.count("\n", 0, token.start()) + 1
    return None


def _may_nest_too_deep(text: str) -> bool:
    """Whether the brackets of ``text`` (strings and comments aside) nest past ``MAX_DEPTH``.

    0.04 s for a 9 MB calendar, where ``too_deep_line`` takes 0.5 s; it reads a few odd runs
    of quotes otherwise than that walk does, which costs at most a parse (the verdict is the
    walk's whatever this says), and stops hostile nesting before the parser builds it.
    """
    depth, position = 0, 0
    # Each match anchored where the last ended, never inside a string it skipped.
    while found := _BRACKET.match(text, position):
        position = found.end()
        if found[1] in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif depth:
            depth -= 1
    return False


def _many_dots(text: str) -> bool:
    """Whether a line of ``text`` has room for a key of more than ``MAX_DEPTH`` parts."""
    return text.count(".") >= MAX_DEPTH and any(
        line.count(".") >= MAX_DEPTH for line in text.split("\n")
    )


def _refuse_deep(path: Path, text: str) -> None:
    """Raise ``InvalidInputError`` at the line where ``text`` nests too deep, if it does."""
    deep_line = too_deep_line(text)
    if deep_line is not None:
        raise InvalidInputError([Problem(display(path), "", TOO_DEEP, deep_line)])


def too_deep(data: object) -> Loc | None:
    """The first place in ``data`` deeper than ``MAX_DEPTH``: nesting added up across lines."""
    stack: list[tuple[Loc, object]] = [((), data)]
    while stack:  # a loop, not recursion, whatever the depth
        loc, value = stack.pop()
        if len(loc) > MAX_DEPTH:
            return loc
        if isinstance(value, dict):
            stack.extend(reversed([((*loc, k), v) for k, v in value.items()]))
        elif isinstance(value, list):
            stack.extend(reversed([((*loc, n), v) for n, v in enumerate(value)]))
    return None


def read(path: Path) -> Document:
    """Read and parse one TOML file.

    Raises ``InvalidInputError`` naming the file (and the line, where known) when it cannot be
    read, is not a regular file, is larger than ``MAX_BYTES``, is not UTF-8, is not TOML or
    nests deeper than ``MAX_DEPTH``.
    """
    try:
        raw = read_bytes(path)
    except OSError as exc:
        problem = Problem(display(path), "", f"cannot read: {exc.strerror}")
        raise InvalidInputError([problem]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = Problem(display(path), "", f"not UTF-8 text: {exc.reason}")
        raise InvalidInputError([problem]) from exc
    # The walk that finds the line of any nesting too deep runs before the parse only when the
    # text may nest too deep: a line of that many dots (tomllib is quadratic in the parts of a
    # dotted key), or brackets that quick scan finds so deep (tomllib would build all of a
    # hostile file's nesting before it could be refused). Otherwise it runs once the parse
    # has failed or found the data too deep. Same verdicts, 0.07 s instead of 0.5 s on a 9 MB
    # calendar.
    if _many_dots(text) or _may_nest_too_deep(text):
        _refuse_deep(path, text)
    try:
        data = tomllib.loads(text)
    except RecursionError as exc:
        _refuse_deep(path, text)
        problem = Problem(display(path), "", "nested too deeply to read")
        raise InvalidInputError([problem]) from exc
    except tomllib.TOMLDecodeError as exc:
        _refuse_deep(path, text)
        found = _DECODE_LINE.search(str(exc))
        message = _DECODE_LINE.sub("", str(exc)).strip()
        line = int(found.group(1)) if found else None
        problem = Problem(display(path), "", f"TOML syntax error: {message}", line)
        raise InvalidInputError([problem]) from exc
    doc = Document(path=path, text=text, data=data)
    deep = too_deep(data)
    if deep is not None:
        _refuse_deep(path, text)
        problem = Problem(doc.name, key_text(str(deep[0])), TOO_DEEP, doc.line_of(deep))
        raise InvalidInputError([problem])
    return doc
