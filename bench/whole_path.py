"""The whole path a person waits for (issue 13, targets 1-3), measured from outside.

    python bench/whole_path.py

1. ``eventwatch export --config X --out DIR`` as a process on one calendar file of 10,000
   events (every tenth all-day, the rest timed in Europe/Brussels and Europe/Istanbul,
   ~600-character descriptions with commas, semicolons and accents), cold (a fresh state_dir:
   no ledger, no feed cache), beside a naive path in the same run: ``tomllib`` parses the same
   file, icalendar's object model renders it (bench/naive.py), the feed is written to a file.
   eventwatch's figure is its time minus ``eventwatch export`` on the shipped calendars/ folder
   (the fixed cost: interpreter, imports, ledger, the 3-event feed) minus the tomllib parse of
   the 10,000-event file; the naive figure is its time past its own tomllib parse (its
   interpreter start and imports are outside its clock).
2. The same after one edited event: export once on a state_dir, change one event's title in
   the file, export again on that state_dir (warm ledger and feed cache). The fixed cost
   subtracted is the shipped folder's export on a warm state_dir; the naive path renders it
   all again.
3. ``eventwatch --version``, ``check`` and ``list`` on the shipped files, as whole processes.

Every process figure is the median of its repeats (all samples are printed; the ratio of the
minimums beside it). The measurements of targets 1 and 2 are interleaved, so that the noise of
a shared machine falls on both sides of each ratio alike. For targets 1 and 2 a cProfile of
the export path run in-process (``inputs.load`` then ``daemon.export``, what the ``export``
command calls) shows what is left, each in a fresh process as the command runs.

``python bench/whole_path.py --naive FILE OUT`` and ``--profile CONFIG OUT`` are the child
processes themselves.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COMMAND = Path(sys.executable).parent / "eventwatch"
sys.path.insert(0, str(HERE))

from provenance import machine, revision  # noqa: E402 - from this folder, on the path above

EVENTS = 10000
EDITED = 5000  # the event whose title changes in target 2
REPEATS = 3  # of each 10,000-event measurement (targets 1 and 2)
FIXED_REPEATS = 5  # of the export of the shipped folder
START_REPEATS = 10  # of each command of target 3
ZONES = ("Europe/Brussels", "Europe/Istanbul")
TARGETS = {"cold": 0.25, "edit": 0.15, "--version": 0.15, "check": 0.35, "list": 0.35}


# -- the calendar file --------------------------------------------------------------------------


def _tables(count: int, seed: int = 13) -> list[dict[str, object]]:
    """``count`` event tables: timed in two zones, every tenth all-day, ~600-character text."""
    import synthetic  # noqa: PLC0415 - imports eventwatch's models; only the parent needs it

    rng = random.Random(seed)  # noqa: S311 - repeatable test data, not security
    first = date(2026, 1, 1)
    made: list[dict[str, object]] = []
    for n in range(count):
        day = first + timedelta(days=n % 730)
        words = synthetic.WORDS
        event: dict[str, object] = {
            "id": f"event-{n}",
            "title": f"Meeting {n}: {rng.choice(words)}, {rng.choice(words)}",
            "description": synthetic.description(rng) + " " + synthetic.description(rng),
            "location": f"Room {n % 50}; {rng.choice(words)}",
            "categories": [rng.choice(["summit", "ministerial", "defence"])],
        }
        if n % 10 == 0:
            event["start"] = day
        else:
            start = datetime(day.year, day.month, day.day, 8 + n % 9, (n % 4) * 15)  # noqa: DTZ001 - local time of its zone
            event["start"] = start
            event["end"] = start + timedelta(hours=1, minutes=30)
            event["timezone"] = ZONES[n % 2]
        made.append(event)
    return made


def calendar_toml(tables: list[dict[str, object]]) -> str:
    """The events as a calendar file (bench/synthetic.py writes it)."""
    import synthetic  # noqa: PLC0415 - imports eventwatch's models; only the parent needs it

    return synthetic.toml_of(tables)


def config_toml(calendars: Path, state: Path) -> str:
    """Settings naming a calendars folder and a state folder (absolute paths)."""
    return f"calendars_dir = {json.dumps(str(calendars))}\nstate_dir = {json.dumps(str(state))}\n"


# -- the naive path (a child process) -----------------------------------------------------------


def naive_child(source: Path, out: Path) -> None:
    """Parse ``source`` with tomllib, render with icalendar's object model, write; print seconds.

    The clock starts after the imports, as eventwatch's fixed cost is taken off its side.
    """
    import tomllib  # noqa: PLC0415
    import zoneinfo  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    import naive  # noqa: PLC0415 - imports icalendar
    from synthetic import STAMP  # noqa: PLC0415

    start = time.perf_counter()
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    parsed = time.perf_counter()
    default = data.get("timezone", "UTC")
    zones: dict[str, zoneinfo.ZoneInfo] = {}
    events = []
    for table in data["events"]:
        begin, end = table["start"], table.get("end", table["start"])
        if isinstance(begin, datetime):
            name = table.get("timezone", default)
            zone = zones.setdefault(name, zoneinfo.ZoneInfo(name))
            begin, end = begin.replace(tzinfo=zone), end.replace(tzinfo=zone)
        events.append(
            SimpleNamespace(
                uid=f"{table['id']}@naive.example",
                start=begin,
                end=end,
                title=table["title"],
                description=table.get("description", ""),
                location=table.get("location", ""),
                categories=table.get("categories", []),
            ),
        )
    body = naive.render(events, STAMP)  # type: ignore[arg-type]
    out.mkdir(parents=True, exist_ok=True)
    (out / "all.ics").write_bytes(body)
    done = time.perf_counter()
    print(json.dumps({"total": done - start, "parse": parsed - start, "bytes": len(body)}))


# -- the profile (a child process) --------------------------------------------------------------


def profile_child(config: Path, out: Path) -> None:
    """Profile what ``eventwatch export`` calls, imports done first; print the top 15 lines."""
    from eventwatch import daemon, inputs  # noqa: PLC0415

    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    loaded = inputs.load(config, None)
    daemon.export(loaded, out)
    profiler.disable()
    seconds = time.perf_counter() - start
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = sorted(stats.stats.items(), key=lambda item: item[1][3], reverse=True)  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"  in-process {seconds:.2f} s under the profiler ({total:.2f} s of profiled time)")
    print(f"  {'calls':>9} {'own s':>7} {'cum s':>7} {'%':>6}  function")
    for (path, line, name), (_, calls, own, cum, _) in rows[:15]:
        print(f"  {calls:>9} {own:7.3f} {cum:7.3f} {100 * cum / total:5.0f}%  {_where(path, line, name)}")
    # The cumulative list nests (a caller holds its callees); own time says where the work is.
    rows.sort(key=lambda item: item[1][2], reverse=True)
    print("  and the top 8 by own time:")
    for (path, line, name), (_, calls, own, cum, _) in rows[:8]:
        print(f"  {calls:>9} {own:7.3f} {cum:7.3f} {100 * own / total:5.0f}%  {_where(path, line, name)}")


def _where(path: str, line: int, name: str) -> str:
    """``module.py:LINE(name)`` with the path cut to the package it belongs to."""
    if path == "~":
        return name
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({name})"


# -- measuring from outside ---------------------------------------------------------------------


def _environment() -> dict[str, str]:
    """This environment without EVENTWATCH_* settings, as the tests run the command."""
    return {k: v for k, v in os.environ.items() if not k.startswith("EVENTWATCH_")}


def timed(command: list[str], cwd: Path = ROOT) -> float:
    """Wall-clock seconds of one whole process; it must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=_environment(), capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr.decode(errors='replace')}")
    return seconds


def export(config: Path, out: Path) -> float:
    """``eventwatch export`` as a user runs it."""
    return timed([str(COMMAND), "--config", str(config), "export", "--out", str(out)])


def naive(source: Path, out: Path) -> dict[str, float]:
    """The naive path in a fresh process: its total and tomllib parse seconds."""
    done = subprocess.run(
        [sys.executable, __file__, "--naive", str(source), str(out)],
        capture_output=True, text=True, check=True, env=_environment(),
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def profile(config: Path, out: Path) -> str:
    """The profile child's report."""
    done = subprocess.run(
        [sys.executable, __file__, "--profile", str(config), str(out)],
        capture_output=True, text=True, check=True, env=_environment(),
    )  # fmt: skip
    return done.stdout.rstrip()


class Folders:
    """Fresh, numbered state and output folders under one temporary root."""

    def __init__(self, root: Path) -> None:
        """Make them under ``root``."""
        self.root = root
        self.count = 0

    def config(self, calendars: Path, state: Path | None = None) -> tuple[Path, Path]:
        """A settings file for ``calendars`` and a state folder (a fresh one unless given)."""
        self.count += 1
        state = state or self.root / f"state-{self.count}"
        config = self.root / f"eventwatch-{self.count}.toml"
        config.write_text(config_toml(calendars, state), encoding="utf-8")
        return config, state

    def out(self) -> Path:
        """A fresh output folder."""
        self.count += 1
        return self.root / f"out-{self.count}"


# -- the report ---------------------------------------------------------------------------------


def versions() -> str:
    """The libraries on the path."""
    from importlib.metadata import version  # noqa: PLC0415

    return ", ".join(f"{name} {version(name)}" for name in ("icalendar", "pydantic", "SQLAlchemy"))


def _samples(values: list[float]) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def verdict(figure: float, target: float) -> str:
    """PASS when ``figure`` is at or under ``target``."""
    return "PASS" if figure <= target else "MISS"


def main() -> None:  # noqa: PLR0915 - one measurement after another, printed in order
    """Measure targets 1-3 in one run and print each figure beside its target."""
    started = time.perf_counter()
    measured = revision()
    print("# eventwatch whole path (issue 13, targets 1-3): eventwatch export as a process vs naive tomllib + icalendar")
    print(f"# {machine()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"# code at {measured}; {versions()}")
    tables = _tables(EVENTS)
    text = calendar_toml(tables)
    edited_text = text.replace(f'title = "{tables[EDITED]["title"]}"', 'title = "Edited {n}"', 1)
    assert edited_text != text
    print(
        f"# {EVENTS} events in one file ({len(text.encode()) / 1e6:.1f} MB; every tenth all-day, "
        f"the rest in {' and '.join(ZONES)}; descriptions ~{statistics.mean(len(str(t['description'])) for t in tables):.0f} "
        f"characters); figures are medians of {REPEATS} (shipped-folder export {FIXED_REPEATS}, target 3 {START_REPEATS})",
    )
    sys.stdout.flush()

    with tempfile.TemporaryDirectory(prefix="ew-whole-") as tmp:
        folders = Folders(Path(tmp))
        big = folders.root / "calendars"
        big.mkdir()
        source = big / "bench.toml"
        source.write_text(text, encoding="utf-8")
        shipped = ROOT / "calendars"

        # The warm state_dirs for the edit case and the shipped folder's warm fixed cost.
        edit_config, _ = folders.config(big)
        export(edit_config, folders.out())  # the first export: ledger and feed cache now warm
        shipped_warm_config, _ = folders.config(shipped)
        export(shipped_warm_config, folders.out())

        naive_runs: list[dict[str, float]] = []
        cold: list[float] = []
        edit: list[float] = []
        fixed_cold: list[float] = []
        fixed_warm: list[float] = []
        for n in range(max(REPEATS, FIXED_REPEATS)):
            if n < REPEATS:
                source.write_text(text, encoding="utf-8")
                naive_runs.append(naive(source, folders.out()))
                cold.append(export(folders.config(big)[0], folders.out()))
                source.write_text(edited_text.replace("{n}", str(n)), encoding="utf-8")
                edit.append(export(edit_config, folders.out()))
            fixed_cold.append(export(folders.config(shipped)[0], folders.out()))
            fixed_warm.append(export(shipped_warm_config, folders.out()))

        # The profiles: cold on a fresh state_dir, then one more edit on the warm one.
        source.write_text(text, encoding="utf-8")
        cold_profile = profile(folders.config(big)[0], folders.out())
        source.write_text(edited_text.replace("{n}", "profiled"), encoding="utf-8")
        edit_profile = profile(edit_config, folders.out())

    parses = [r["parse"] for r in naive_runs]
    naive_past = [r["total"] - r["parse"] for r in naive_runs]
    parse = statistics.median(parses)
    print()
    print("## Targets 1 and 2: whole export of 10,000 events (seconds; samples in run order)")
    print(f"tomllib parse of the file (in the naive runs)   median {parse:6.3f}   [{_samples(parses)}]")
    print(f"naive total                                     median {statistics.median(r['total'] for r in naive_runs):6.3f}   [{_samples([r['total'] for r in naive_runs])}]")
    print(f"naive past the parse                            median {statistics.median(naive_past):6.3f}   [{_samples(naive_past)}]")
    print(f"eventwatch export, shipped folder, cold state   median {statistics.median(fixed_cold):6.3f}   [{_samples(fixed_cold)}]")
    print(f"eventwatch export, shipped folder, warm state   median {statistics.median(fixed_warm):6.3f}   [{_samples(fixed_warm)}]")
    print(f"eventwatch export, 10,000, cold                 median {statistics.median(cold):6.3f}   [{_samples(cold)}]")
    print(f"eventwatch export, 10,000, one event edited     median {statistics.median(edit):6.3f}   [{_samples(edit)}]")
    results: list[tuple[str, float, str, float, str]] = []
    for key, label, runs, fixed in (
        ("cold", "1. export of 10,000, cold", cold, fixed_cold),
        ("edit", "2. export after one edited event", edit, fixed_warm),
    ):
        ours = statistics.median(runs) - statistics.median(fixed) - parse
        theirs = statistics.median(naive_past)
        ours_min = min(runs) - min(fixed) - min(parses)
        ratio_min = ours_min / min(naive_past)
        results.append(
            (label, ours / theirs, f"{ours:.3f} s vs naive {theirs:.3f} s (ratio of minimums {ratio_min:.2f}x)",
             TARGETS[key], "x"),
        )  # fmt: skip

    startup: dict[str, list[float]] = {"--version": [], "check": [], "list": []}
    shipped_config = ROOT / "config" / "eventwatch.toml"
    commands = {
        "--version": [str(COMMAND), "--version"],
        "check": [str(COMMAND), "--config", str(shipped_config), "check"],
        "list": [str(COMMAND), "--config", str(shipped_config), "list"],
    }
    for _ in range(START_REPEATS):
        for name, command in commands.items():
            startup[name].append(timed(command))
    print()
    print(f"## Target 3: whole processes on the shipped files (seconds, {START_REPEATS} runs each, interleaved)")
    for name, values in startup.items():
        print(f"eventwatch {name:<10} median {statistics.median(values):.3f}  min {min(values):.3f}  max {max(values):.3f}")
        results.append(
            (f"3. eventwatch {name}", statistics.median(values), "median, whole process", TARGETS[name], " s"),
        )

    print()
    print("## Against the targets (eventwatch past the parse and the shipped-folder export; naive past the parse)")
    for label, figure, detail, target, unit in results:
        print(f"{label:<36} {figure:6.2f}{unit:<2} target <= {target:.2f}{unit:<2} {verdict(figure, target)}   {detail}")

    print()
    print("## Where the time goes: cProfile of inputs.load + daemon.export in a fresh process, top 15 by cumulative time")
    print("Target 1, cold (fresh state_dir):")
    print(cold_profile)
    print("Target 2, one event edited (warm state_dir):")
    print(edit_profile)
    after = revision()
    if after != measured:
        print(f"NOTE: the code changed during the run: {measured} at the start, {after} at the end")
    print(f"# {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--naive":
        naive_child(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--profile":
        profile_child(Path(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 1:
        main()
    else:
        sys.exit(__doc__)
