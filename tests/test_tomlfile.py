"""Reading TOML files and placing a field back on its line."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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


def problem_of(path: Path) -> str:
    """The one problem reading ``path`` gives, as printed."""
    with pytest.raises(InvalidInputError) as exc:
        tomlfile.read(path)
    (problem,) = exc.value.problems
    return str(problem)


class TestNesting:
    """Nesting beyond ``MAX_DEPTH`` is refused with its line, before any parser can recurse."""

    DEEP = tomlfile.MAX_DEPTH + 1

    @pytest.mark.parametrize(
        "value",
        [
            "[" * 1000 + "]" * 1000,
            "{a = " * 1000 + "1" + "}" * 1000,
            "[{a = " * 500 + "1" + "}]" * 500,
            "[" * DEEP + "]" * DEEP,
        ],
        ids=["arrays", "inline-tables", "both", "one-too-many"],
    )
    def test_deep_values_are_refused(self, tmp_path: Path, value: str) -> None:
        """Arrays and inline tables inside each other give a problem naming file and line."""
        path = tmp_path / "deep.toml"
        path.write_text(f'name = "X"\n# [[[[[[ a comment\nx = {value}\n', encoding="utf-8")
        assert problem_of(path).startswith(
            f"deep.toml:3: nested more than {tomlfile.MAX_DEPTH} levels deep"
        )

    @pytest.mark.parametrize(
        "text",
        [
            ".".join(["a"] * 20_000) + " = 1\n",
            "[" + ".".join(['"a.b"'] * 20_000) + "]\n",
            "[[" + " . ".join(["a"] * DEEP) + "]]\n",
            "x = { " + ".".join(["a"] * DEEP) + " = 1 }\n",
        ],
        ids=["dotted-key", "table-header", "array-header", "inline-key"],
    )
    def test_long_dotted_keys_are_refused(self, tmp_path: Path, text: str) -> None:
        """A key of more parts than the limit is refused at its line, whatever shape it has."""
        path = tmp_path / "deep.toml"
        path.write_text('name = "X"\n' + text, encoding="utf-8")
        assert problem_of(path).startswith(
            f"deep.toml:2: nested more than {tomlfile.MAX_DEPTH} levels deep"
        )

    @pytest.mark.parametrize(("first", "shown"), [("t", "t"), ('"a\\nb"', '"a\\nb"')])
    def test_nesting_built_up_across_lines_is_refused(
        self, tmp_path: Path, first: str, shown: str
    ) -> None:
        """A table header, a dotted key and arrays, each within the limit, add up."""
        third = tomlfile.MAX_DEPTH // 3 + 1
        header = ".".join([first] + ["t"] * (third - 1))
        key = ".".join(["k"] * third)
        path = tmp_path / "deep.toml"
        path.write_text(
            f"[{header}]\nok = 1\n{key} = {'[' * third}1{']' * third}\n", encoding="utf-8"
        )
        assert problem_of(path) == (
            f"deep.toml:3: {shown}: nested more than {tomlfile.MAX_DEPTH} levels deep "
            "(tables, arrays and dotted keys inside each other); that is the most allowed"
        )

    def test_brackets_in_strings_and_comments_do_not_count(self, tmp_path: Path) -> None:
        """Only the document's structure counts, not text that looks like it."""
        many = "[{" * 100
        path = tmp_path / "text.toml"
        path.write_text(
            f'a = "{many}"\nb = \'{many}\'\nc = """\n{many}\n"""\n'
            f"d = '''{many}'''\n# {many}\n\"{'.' * 100}\" = 1\ne = 1.5\n",
            encoding="utf-8",
        )
        assert tomlfile.read(path).data["a"] == many

    def test_nesting_up_to_the_limit_is_read(self, tmp_path: Path) -> None:
        """A document exactly at the limit is valid."""
        path = tmp_path / "ok.toml"
        depth = tomlfile.MAX_DEPTH - 1
        path.write_text(f"x = {'[' * depth}1{']' * depth}\n", encoding="utf-8")
        value = tomlfile.read(path).data["x"]
        for _ in range(depth):
            (value,) = value
        assert value == 1

    def test_recursion_in_the_parser_is_a_problem(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Should the TOML parser still recurse too deep (from a deep caller), the file is named."""

        def recurse(_text: str) -> object:
            raise RecursionError

        monkeypatch.setattr(tomlfile.tomllib, "loads", recurse)
        path = tmp_path / "any.toml"
        path.write_text("a = 1\n", encoding="utf-8")
        assert problem_of(path) == "any.toml: nested too deeply to read"


def _verdict_walking_first(text: str) -> str:
    """What ``tomlfile.read`` said when it walked every text for nesting before parsing it."""
    line = tomlfile.too_deep_line(text)
    if line is not None:
        return f"{line}: {tomlfile.TOO_DEEP}"
    try:
        data = tomlfile.tomllib.loads(text)
    except RecursionError:
        return "nested too deeply to read"
    except tomlfile.tomllib.TOMLDecodeError:
        return "syntax"
    return "deep data" if tomlfile.too_deep(data) else "read"


def _verdict(path: Path) -> str:
    try:
        tomlfile.read(path)
    except InvalidInputError as exc:
        (problem,) = exc.problems
        if problem.message == tomlfile.TOO_DEEP and not problem.field:
            return f"{problem.line}: {problem.message}"
        if problem.message.startswith("TOML syntax error"):
            return "syntax"
        return problem.message if problem.message != tomlfile.TOO_DEEP else "deep data"
    return "read"


# Pieces of keys, values, strings and brackets that nest, in any order and number.
_PIECES = st.sampled_from(
    ["a", ".", " . ", "=", " = ", "1", "[", "]", "{", "}", "[[", "]]", ",", '"', "'", '"""',
     "#", "\n", "\n", "x = ", "[t]\n", "a.b.c", '"q.r"'],
)  # fmt: skip
_SHAPES = [
    lambda n: "x = " + "[" * n + "]" * n,
    lambda n: "x = " + "{a = " * n + "1" + "}" * n,
    lambda n: ".".join(["k"] * n) + " = 1",
    lambda n: "[" + " . ".join(["t"] * n) + "]\nv = 1",
    lambda n: "[" + ".".join(["t"] * (n // 2)) + "]\n" + ".".join(["k"] * (n - n // 2)) + " = []",
    lambda n: f'd = "{"." * n}"\n' + ".".join(["k"] * n) + " = 1",
    lambda n: "= broken\nx = " + "[" * n + "]" * n,
    lambda n: "x = " + "[" * n + "]" * n + "\n= broken",
    lambda n: "x = " + "[" * n,
]
_DEEPISH = st.one_of(
    st.lists(_PIECES, max_size=60).map("".join),
    st.tuples(st.sampled_from(_SHAPES), st.integers(0, 40)).map(lambda s: s[0](s[1])),
)


@pytest.mark.parametrize(
    "depth", [tomlfile.MAX_DEPTH - 1, tomlfile.MAX_DEPTH, tomlfile.MAX_DEPTH + 1, 2000]
)
@pytest.mark.parametrize("shape", range(len(_SHAPES)))
def test_the_ends_of_the_range_get_the_verdicts_of_walking_first(
    tmp_path: Path, shape: int, depth: int
) -> None:
    """Every shape of nesting, just within, at and past the limit, and far past it."""
    text = _SHAPES[shape](depth)
    path = tmp_path / "any.toml"
    path.write_text(text, encoding="utf-8")
    assert _verdict(path) == _verdict_walking_first(text)


@given(_DEEPISH)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # rewritten each time
def test_parsing_first_gives_the_verdicts_of_walking_first(tmp_path: Path, text: str) -> None:
    """Walking the text only when it may be too deep refuses exactly what walking it always did.

    Same problem and line for nesting too deep; the same files read, or refused otherwise.
    """
    path = tmp_path / "any.toml"
    path.write_text(text, encoding="utf-8")
    assert _verdict(path) == _verdict_walking_first(text)


@pytest.mark.parametrize(
    "text",
    [
        ".".join(["a"] * 20_000) + " = 1\n",
        "".join(f"a{n} = {'[' * 40}{']' * 40}\n" for n in range(1000)),
        "".join(f"a{n} = {'{a = ' * 40}1{'}' * 40}\n" for n in range(1000)),
        "x = [\n" * 40 + "]\n" * 40,
        'x = "]]]"\n' + "y = " + "[" * 40 + "]" * 40 + "\n",
    ],
    ids=["long-key", "deep-arrays", "deep-inline-tables", "across-lines", "after-a-string"],
)
def test_nesting_too_deep_never_reaches_the_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """A file nested too deep is refused before it is parsed.

    The parser is quadratic in a dotted key's parts, and builds all of a hostile file's
    nesting before it could be refused.
    """
    parsed: list[str] = []
    monkeypatch.setattr(tomlfile.tomllib, "loads", parsed.append)
    path = tmp_path / "deep.toml"
    path.write_text('name = "X"\n' + text, encoding="utf-8")
    assert problem_of(path).startswith("deep.toml:")
    assert tomlfile.TOO_DEEP in problem_of(path)
    assert parsed == []


def test_brackets_in_strings_and_comments_reach_the_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The quick look before the parse skips strings and comments, as the walk does."""
    parsed: list[str] = []
    monkeypatch.setattr(tomlfile.tomllib, "loads", lambda text: parsed.append(text) or {})
    many = "[{" * 40
    path = tmp_path / "text.toml"
    path.write_text(
        f"a = \"{many}\"\nb = '{many}'\nc = \"\"\"\n{many}\n\"\"\"\nd = '''{many}'''\n# {many}\n",
        encoding="utf-8",
    )
    tomlfile.read(path)
    assert len(parsed) == 1


@pytest.mark.parametrize("opening", ['\\"""', "\\" + "'" * 3, '"""a\\'])
def test_unclosed_multi_line_strings_are_read_in_linear_time(tmp_path: Path, opening: str) -> None:
    """A string opened on every line and never closed is refused at once.

    It was quadratic (72 s for 150 KB): each opening quote scanned to the end again.
    """
    path = tmp_path / "quotes.toml"
    path.write_text(f"{opening}\n" * 200_000, encoding="utf-8")  # about 1 MB
    started = time.perf_counter()
    assert "TOML syntax error" in problem_of(path)
    assert tomlfile.too_deep_line(path.read_text(encoding="utf-8")) is None
    assert time.perf_counter() - started < 5


def test_long_keys_are_placed_in_linear_time(tmp_path: Path) -> None:
    """Long quoted keys full of dots and long runs of blanks are placed quickly (was quadratic)."""
    long = "a." * 100_000
    blank = " " * 100_000
    path = tmp_path / "long.toml"
    path.write_text(
        f'["{long}"]\n"{long}".b = 1\n[c{blank}.{blank}d]\ne{blank}.{blank}f = 1\n',
        encoding="utf-8",
    )
    doc = tomlfile.read(path)
    started = time.perf_counter()
    assert [doc.line_of(loc) for loc in [(long, long, "b"), ("c", "d", "e", "f")]] == [2, 4]
    assert time.perf_counter() - started < 1


def test_prefixes_of_a_dotted_key_have_its_line(tmp_path: Path) -> None:
    """An error about ``a`` or ``a.b`` points at ``a.b.c = 1``, the key that made them."""
    path = tmp_path / "dotted.toml"
    path.write_text("x = 1\na.b.c = 1\n[t.u]\nv = 1\n", encoding="utf-8")
    doc = tomlfile.read(path)
    assert [doc.line_of(loc) for loc in [("a",), ("a", "b"), ("t",), ("t", "u", "v")]] == [
        2,
        2,
        3,
        4,
    ]


def test_reading_stops_at_the_limit_whatever_size_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that says it is empty (as /proc files do) is still read no further than the limit."""
    monkeypatch.setattr(tomlfile, "MAX_BYTES", 16)
    (tmp_path / "proc.toml").symlink_to("/proc/self/status")
    assert problem_of(tmp_path / "proc.toml").startswith("proc.toml: cannot read: larger than")


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_only_line_feeds_end_lines(tmp_path: Path, separator: str) -> None:
    """Characters Python counts as line breaks, inside a string, do not shift later lines."""
    path = tmp_path / "breaks.toml"
    path.write_bytes(f'a = "one{separator}two"\r\nb = 1\n'.encode())
    assert tomlfile.read(path).line_of(("b",)) == 2
