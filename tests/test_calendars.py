"""Calendar files: the shipped NATO calendar, and every way a file can be wrong."""

from __future__ import annotations

import os
import time
from datetime import date
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventwatch import calendars
from eventwatch.errors import CalendarError
from eventwatch.models import Status

from . import hostile
from .conftest import MINIMAL_CALENDAR, SHIPPED_CALENDARS

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Site


class TestShippedCalendar:
    """The NATO 2026 calendar, every fact from the cited articles."""

    @pytest.fixture
    def events(self) -> dict[str, calendars.Event]:
        """The shipped events by id."""
        (nato,) = calendars.load(SHIPPED_CALENDARS)
        assert nato.id == "nato-2026"
        assert nato.name == "NATO meetings 2026"
        return {e.id: e for e in nato.events}

    def test_three_events(self, events: dict[str, calendars.Event]) -> None:
        """The ministerial, the NATO-Ukraine Council session and the summit."""
        assert sorted(events) == [
            "defence-ministers-2026-02",
            "nato-ukraine-council-2026-02",
            "summit-2026-07",
        ]

    def test_ministerial(self, events: dict[str, calendars.Event]) -> None:
        """12 February 2026, all day, at NATO HQ in Brussels, chaired by Mark Rutte."""
        e = events["defence-ministers-2026-02"]
        assert (e.all_day, e.first_day, e.last_day) == (True, date(2026, 2, 12), date(2026, 2, 12))
        assert e.timezone == "Europe/Brussels"
        assert e.location == "NATO Headquarters, Brussels, Belgium"
        assert e.categories == ("ministerial", "defence")
        assert e.status is Status.CONFIRMED
        assert ("Mark Rutte", "NATO Secretary General, chair") in [
            (p.name, p.role) for p in e.participants
        ]
        for topic in (
            "Ukraine",
            "eastern flank",
            "deterrence",
            "Hague Summit",
            "5% of GDP",
            "2035",
            "industrial production",
            "KFOR",
            "Western Balkans",
            "Ankara",
        ):
            assert topic in e.description, topic

    def test_council_session(self, events: dict[str, calendars.Event]) -> None:
        """The Council session is the same day, related to the ministerial, without reminders."""
        e = events["nato-ukraine-council-2026-02"]
        assert (e.first_day, e.last_day, e.timezone) == (date(2026, 2, 12),) * 2 + (
            "Europe/Brussels",
        )
        assert e.related_to == "defence-ministers-2026-02"
        assert {p.name for p in e.participants} == {"Mykhailo Fedorov", "Kaja Kallas"}
        assert e.reminders.offsets == ()

    def test_summit(self, events: dict[str, calendars.Event]) -> None:
        """Ankara, Türkiye, 7 and 8 July 2026: two whole days on Istanbul's clock."""
        e = events["summit-2026-07"]
        assert (e.all_day, e.first_day, e.last_day) == (True, date(2026, 7, 7), date(2026, 7, 8))
        assert e.timezone == "Europe/Istanbul"
        assert e.location == "Ankara, Türkiye"
        assert e.categories == ("summit",)

    def test_every_event_cites_its_sources(self, events: dict[str, calendars.Event]) -> None:
        """Each event names the article it comes from; UNN's was published on 11 February."""
        for e in events.values():
            assert {s.publisher for s in e.sources} <= {"RksNews", "UNN, Kyiv"}
            assert e.sources, e.id
        unn = [s for s in events["summit-2026-07"].sources if s.publisher == "UNN, Kyiv"]
        assert [s.published for s in unn] == [date(2026, 2, 11)]


def problems_of(directory: Path) -> list[str]:
    """Every problem ``load`` reports for ``directory``, as printed."""
    with pytest.raises(CalendarError) as exc:
        calendars.load(directory)
    return [str(p) for p in exc.value.problems]


EVENT_HEAD = '[[events]]\nid = "meeting"\ntitle = "Meeting"\n'

# (case, file text, the one problem expected); line numbers count from 1 in the file text.
BAD_FILES = [
    (
        "toml syntax",
        'name = "X"\ntimezone = "UTC"\n[[events]\nid = "a"\n',
        "bad.toml:3: TOML syntax error: Expected ']]' at the end of an array declaration",
    ),
    (
        "unknown top-level key",
        'name = "X"\ntimezone = "UTC"\ncolour = "red"\n',
        (
            "bad.toml:3: colour: unknown key; allowed here: "
            "name, description, timezone, reminders, events"
        ),
    ),
    (
        "unknown event key",
        'name = "X"\ntimezone = "UTC"\n' + EVENT_HEAD + 'start = 2026-01-01\ntimezon = "UTC"\n',
        "bad.toml:7: events[0].timezon: unknown key (did you mean 'timezone'?); allowed here:",
    ),
    (
        "unknown key in an inline table",
        'name = "X"\ntimezone = "UTC"\n[reminders]\nrecipients = [{ adress = "a@example.org" }]\n',
        (
            "bad.toml:4: reminders.recipients[0].address: required, but missing",
            "bad.toml:4: reminders.recipients[0].adress: unknown key (did you mean 'address'?)",
        ),
    ),
    (
        "a key the file name supplies",
        'id = "other"\nname = "X"\ntimezone = "UTC"\n',
        "bad.toml:1: id: unknown key (the calendar's id is its file name)",
    ),
    (
        "wrong type",
        'name = "X"\ntimezone = "UTC"\n'
        + EVENT_HEAD
        + 'start = 2026-01-01\ncategories = "summit"\n',
        "bad.toml:7: events[0].categories: Input should be a valid tuple, got 'summit'",
    ),
    (
        "wrong type for a date",
        'name = "X"\ntimezone = "UTC"\n' + EVENT_HEAD + "start = 12\n",
        "bad.toml:6: events[0].start: expected a date (2026-07-07) or a local date-time",
    ),
    (
        "unknown timezone",
        'name = "X"\ntimezone = "UTC"\n'
        + EVENT_HEAD
        + 'start = 2026-01-01\ntimezone = "Europe/Brusels"\n',
        (
            "bad.toml:7: events[0].timezone: 'Europe/Brusels' is not an IANA time zone "
            "(did you mean 'Europe/Brussels'?)"
        ),
    ),
    (
        "end before start",
        'name = "X"\ntimezone = "UTC"\n' + EVENT_HEAD + "start = 2026-07-08\nend = 2026-07-07\n",
        "bad.toml:7: events[0].end: 2026-07-07 is before start 2026-07-08",
    ),
    (
        "duplicate event id",
        'name = "X"\ntimezone = "UTC"\n'
        + EVENT_HEAD
        + "start = 2026-01-01\n"
        + EVENT_HEAD
        + "start = 2026-01-02\n",
        "bad.toml:8: events[1].id: 'meeting' repeats events[0].id",
    ),
    (
        "malformed e-mail address",
        'name = "X"\ntimezone = "UTC"\n[reminders]\nrecipients = [\n  { address = "ops@" },\n]\n',
        "bad.toml:5: reminders.recipients[0].address: 'ops@' is not an e-mail address",
    ),
    (
        "malformed duration",
        'name = "X"\ntimezone = "UTC"\n[reminders]\noffsets = ["P1D", "2 days"]\n',
        "bad.toml:4: reminders.offsets[1]: '2 days' is not a duration like 'P30D'",
    ),
    (
        "related_to names no event",
        'name = "X"\ntimezone = "UTC"\n'
        + EVENT_HEAD
        + 'start = 2026-01-01\nrelated_to = "summit"\n',
        "bad.toml:7: events[0].related_to: 'summit' names no event in this calendar",
    ),
    (
        "control character in a title",
        (
            'name = "X"\ntimezone = "UTC"\n[[events]]\nid = "a"\n'
            'title = "Bell\\u0007"\nstart = 2026-01-01\n'
        ),
        "bad.toml:5: events[0].title: control character U+0007 is not allowed here",
    ),
    (
        "newline in a location",
        'name = "X"\ntimezone = "UTC"\n' + EVENT_HEAD + 'start = 2026-01-01\nlocation = "a\\nb"\n',
        "bad.toml:7: events[0].location: control character U+000A is not allowed here",
    ),
    (
        "control character in a description",
        'name = "X"\ntimezone = "UTC"\n'
        + EVENT_HEAD
        + 'start = 2026-01-01\ndescription = """\nok\n\\u001b[31m"""\n',
        (
            "bad.toml:7: events[0].description: control character U+001B is not allowed here "
            "(only newlines and tabs are)"
        ),
    ),
    (
        "participant in a multi-line array",
        'name = "X"\ntimezone = "UTC"\n' + EVENT_HEAD + "start = 2026-01-01\nparticipants = [\n"
        '  { name = "A" },\n  { name = "" },\n]\n',
        "bad.toml:9: events[0].participants[1].name: must not be empty",
    ),
    (
        "invalid file name",
        None,
        "Bad Name.toml: file name: 'Bad Name' is not a valid id",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES]
)
def test_bad_file_is_reported_with_file_line_and_field(
    site: Site,
    text: str | None,
    expected: str | tuple[str, ...],
) -> None:
    """Each mistake is one line naming the file, the line, the field and what is wrong."""
    if text is None:
        site.write_calendar("Bad Name", MINIMAL_CALENDAR)
    else:
        site.write_calendar("bad", text)
    found = problems_of(site.calendars)
    wanted = (expected,) if isinstance(expected, str) else expected
    assert len(found) == len(wanted), found
    for line, prefix in zip(found, wanted, strict=True):
        assert line.startswith(f"calendars/{prefix}"), line


def test_every_broken_file_is_reported(site: Site) -> None:
    """A broken file never hides another's problems, and each file's problems are all listed."""
    site.write_calendar("one", 'name = "X"\ntimezone = "Mars/Olympus"\ncolour = 1\n')
    site.write_calendar("two", "name = \n")
    found = problems_of(site.calendars)
    assert [p.split(":")[0:2] for p in found] == [
        ["calendars/one.toml", "2"],
        ["calendars/one.toml", "3"],
        ["calendars/two.toml", "1"],
    ]


def test_empty_folder_is_an_error(tmp_path: Path) -> None:
    """A calendars folder with no calendar in it is a mistake, not an empty feed."""
    (tmp_path / "calendars").mkdir()
    (tmp_path / "calendars" / "notes.txt").write_text("not a calendar")
    assert problems_of(tmp_path / "calendars") == [
        "calendars: no calendar files (*.toml) in this folder",
    ]


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    """A calendars folder that does not exist is named."""
    assert problems_of(tmp_path / "nowhere") == ["nowhere: calendars folder does not exist"]


def test_unreadable_bytes_are_an_error(site: Site) -> None:
    """A file that is not UTF-8 is reported, not decoded with guesses."""
    (site.calendars / "latin.toml").write_bytes(b'name = "Caf\xe9"\n')
    assert problems_of(site.calendars) == [
        "calendars/latin.toml: not UTF-8 text: invalid continuation byte",
    ]


def test_hidden_and_editor_files_are_skipped(site: Site) -> None:
    """Editor lock files and hidden files in the folder are not calendars."""
    (site.calendars / ".#test.toml").write_text("broken")
    (site.calendars / "#test.toml#").write_text("broken")
    assert [c.id for c in calendars.load(site.calendars)] == ["test"]


def test_calendars_load_in_name_order(site: Site) -> None:
    """Calendars come back sorted by id, whatever order the folder lists them in."""
    site.write_calendar("alpha", MINIMAL_CALENDAR)
    site.write_calendar("zulu", MINIMAL_CALENDAR)
    assert [c.id for c in calendars.load(site.calendars)] == ["alpha", "test", "zulu"]


@pytest.mark.parametrize("kind", sorted(hostile.MAKERS))
def test_entry_that_is_no_regular_file_is_one_problem(site: Site, kind: str) -> None:
    """A loop, FIFO, device, folder, huge file or dangling link named *.toml gives one problem."""
    message = hostile.make(kind, site.calendars / "entry.toml")
    site.write_calendar("other", 'name = "X"\ntimezone = "Mars/Olympus"\n')
    with hostile.fifos_unblocked(site.calendars):
        found = problems_of(site.calendars)
    assert found[0] == f"calendars/entry.toml: {message}"
    assert [p.split(":")[0] for p in found[1:]] == ["calendars/other.toml"]  # still read


@pytest.mark.parametrize(
    ("name", "shown"),
    [(b"\xff.toml", r"\xff"), (b"caf\xe9.toml", r"caf\xe9"), (b"a\nb.toml", r"a\nb")],
)
def test_name_that_cannot_be_printed_is_escaped(site: Site, name: bytes, shown: str) -> None:
    """A name not in UTF-8, or with a line break, is shown escaped on its problem's one line."""
    hostile.write_bytes_named(site.calendars, name, MINIMAL_CALENDAR.encode())
    (problem,) = problems_of(site.calendars)
    assert problem.startswith(f"calendars/{shown}.toml: file name: '{shown}' is not a valid id")
    problem.encode("ascii")  # nothing left that a terminal or a log could choke on


def test_a_link_is_named_as_it_is_in_the_folder(site: Site, tmp_path: Path) -> None:
    """A calendar that links elsewhere is named by its entry in the folder, not by its target."""
    (tmp_path / "elsewhere.toml").write_text("name = \n", encoding="utf-8")
    (site.calendars / "linked.toml").symlink_to(tmp_path / "elsewhere.toml")
    assert [p.split(":")[:2] for p in problems_of(site.calendars)] == [
        ["calendars/linked.toml", "1"]
    ]


class TestKnownFiles:
    """A reload reads only the calendar files that changed; the result is a full read's."""

    @staticmethod
    def write(path: Path, text: str) -> None:
        """Write ``text`` as a file last modified an hour ago."""
        path.write_text(text, encoding="utf-8")
        hour_ago = time.time_ns() - 3600 * 10**9
        os.utime(path, ns=(hour_ago, hour_ago))

    @staticmethod
    def later() -> int:
        """An hour from now: every file written by the test is past ``RACY`` by then."""
        return time.time_ns() + 3600 * 10**9

    @pytest.fixture
    def folder(self, tmp_path: Path) -> Path:
        """Three valid calendar files."""
        for name in ("a", "b", "c"):
            self.write(tmp_path / f"{name}.toml", MINIMAL_CALENDAR)
        return tmp_path

    @pytest.fixture
    def reads(self, monkeypatch: pytest.MonkeyPatch) -> list[str]:
        """The names of the files read from now on."""
        read: list[str] = []
        original = calendars.tomlfile.read

        def counting(path: Path) -> calendars.tomlfile.Document:
            read.append(path.name)
            return original(path)

        monkeypatch.setattr(calendars.tomlfile, "read", counting)
        return read

    def test_unchanged_files_are_not_read_again(self, folder: Path, reads: list[str]) -> None:
        """After an edit of one file, that file alone is read, and the result is a full read's."""
        known = calendars.Known(clock=self.later)
        calendars.read(folder, known)
        assert reads == ["a.toml", "b.toml", "c.toml"]
        reads.clear()
        edited = MINIMAL_CALENDAR.replace('name = "', 'name = "Edited ', 1)
        assert edited != MINIMAL_CALENDAR
        self.write(folder / "b.toml", edited)
        again = calendars.read(folder, known)
        assert reads == ["b.toml"]
        assert again == calendars.read(folder)
        assert again[0][1].name.startswith("Edited ")

    def test_a_rewrite_of_the_same_size_and_time_is_read(
        self, folder: Path, reads: list[str]
    ) -> None:
        """A file rewritten to the same length with its old modification time put back is new."""
        known = calendars.Known(clock=self.later)
        calendars.read(folder, known)
        path = folder / "a.toml"
        before = path.stat()
        same_size = MINIMAL_CALENDAR.replace('name = "', 'name = "x', 1).replace(" ", "", 1)
        assert len(same_size) == len(MINIMAL_CALENDAR)
        path.write_text(same_size, encoding="utf-8")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        reads.clear()
        found, _ = calendars.read(folder, known)
        assert reads == ["a.toml"]
        assert found == calendars.read(folder)[0]

    def test_broken_removed_and_replaced_files(self, folder: Path, reads: list[str]) -> None:
        """A broken file is an error each time; a removed file is gone; a replaced one is read."""
        known = calendars.Known(clock=self.later)
        calendars.read(folder, known)
        (folder / "a.toml").write_text("broken = \n", encoding="utf-8")
        for _ in range(2):
            with pytest.raises(CalendarError, match=r"a\.toml:1"):
                calendars.read(folder, known)
        (folder / "a.toml").unlink()
        self.write(folder / "new.toml", MINIMAL_CALENDAR)
        (folder / "c.toml").rename(folder / "c.old")
        self.write(folder / "c.toml", MINIMAL_CALENDAR)
        reads.clear()
        found, digests = calendars.read(folder, known)
        assert sorted(reads) == ["c.toml", "new.toml"]
        assert [c.id for c in found] == ["b", "c", "new"]
        assert (found, digests) == calendars.read(folder)
        assert sorted(p.name for p in known.files) == ["b.toml", "c.toml", "new.toml"]  # no leak

    @pytest.mark.parametrize("times", ["now", "put back an hour"])
    def test_a_file_changed_just_now_is_read_again(
        self, folder: Path, reads: list[str], times: str
    ) -> None:
        """Within ``RACY`` of its last change a file may change again in the same clock tick.

        Changed by its ctime, which no tool sets back, whatever its modification time says.
        """
        known = calendars.Known()
        path = folder / "a.toml"
        if times == "now":
            path.write_text(MINIMAL_CALENDAR, encoding="utf-8")
        else:
            self.write(path, MINIMAL_CALENDAR)  # as cp -p and rsync -t leave it
        calendars.read(folder, known)
        reads.clear()
        calendars.read(folder, known)
        assert reads == ["a.toml", "b.toml", "c.toml"]  # the fixture wrote all just now


# Event tables, mostly valid, sometimes not in one of many ways.
_TABLES = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.sampled_from(['"a"', '"b"', '"c"', '"d"', '"Bad id"']),
            "title": st.sampled_from(['"T"', '"U"', '"T"', '"\\u0007"']),
            "start": st.sampled_from(["2026-05-04", "2026-05-04T10:00:00", "2026-05-05"]),
        },
        optional={
            "end": st.sampled_from(["2026-05-04T12:00:00", "2026-05-06", "2026-05-03"]),
            "timezone": st.sampled_from(['"Europe/Istanbul"', '"UTC"', '"Mars/Base"']),
            "related_to": st.sampled_from(['"a"', '"z"']),
            "reminders": st.sampled_from(['{ offsets = ["P1D"] }', '{ offsets = ["P1D", "P1D"] }']),
        },
    ),
    max_size=4,
    unique_by=lambda table: table["id"],
)
# Versions of a file: a default zone and one of two sets of tables, so that tables recur.
_VERSIONS = st.tuples(_TABLES, _TABLES).flatmap(
    lambda pool: st.lists(
        st.tuples(
            st.sampled_from(['"Europe/Brussels"', '"UTC"', '"Nowhere/Zone"']), st.sampled_from(pool)
        ),
        min_size=1,
        max_size=4,
    )
)


def _file(zone: str, tables: list[dict[str, str]]) -> str:
    events = "".join(
        "\n[[events]]\n" + "".join(f"{key} = {value}\n" for key, value in table.items())
        for table in tables
    )
    return f'name = "X"\ntimezone = {zone}\n{events}'


def _outcome(folder: Path, known: calendars.Known | None) -> object:
    try:
        return calendars.read(folder, known)
    except CalendarError as exc:
        return [str(p) for p in exc.problems]


@given(_VERSIONS)
def test_reusing_unchanged_tables_reads_as_a_full_read(
    tmp_path_factory: pytest.TempPathFactory, versions: list[tuple[str, list[dict[str, str]]]]
) -> None:
    """Any series of versions of a file, valid or not, reads with ``Known`` as without it.

    The same calendars and digests, or the same problems at the same lines.
    """
    folder = tmp_path_factory.mktemp("versions")
    known = calendars.Known()
    for zone, tables in versions:
        path = folder / "cal.toml"
        path.write_text(_file(zone, tables), encoding="utf-8")
        assert _outcome(folder, known) == _outcome(folder, None)


def test_an_edited_file_validates_only_its_changed_tables(tmp_path: Path) -> None:
    """The events of unchanged tables are the very records read last time; the edited one is new."""
    tables = [{"id": f'"e{n}"', "title": f'"E{n}"', "start": "2026-05-04"} for n in range(3)]
    path = tmp_path / "cal.toml"
    path.write_text(_file('"UTC"', tables), encoding="utf-8")
    known = calendars.Known()
    ((before,), _) = calendars.read(tmp_path, known)
    tables[1]["title"] = '"Edited"'
    path.write_text(_file('"UTC"', tables), encoding="utf-8")
    ((after,), _) = calendars.read(tmp_path, known)
    assert [a is b for a, b in zip(after.events, before.events, strict=True)] == [True, False, True]
    assert after.events[1].title == "Edited"
