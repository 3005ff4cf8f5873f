"""Feed rendering benchmark: eventwatch beside a naive icalendar writer and a template writer.

Each measurement runs in its own process, so that its peak memory is its own. Run it with
``make bench``; it prints a table and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402

SIZES = (1000, 10000, 100000)
IMPLEMENTATIONS = (
    "eventwatch",
    "eventwatch-edit",
    "eventwatch-restart",
    "naive",
    "template",
    "ical-generator",
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(impl: str, size: int) -> dict[str, float]:
    """Render ``size`` synthetic events with ``impl``; seconds, output size and peak memory."""
    from eventwatch import feeds, revisions  # noqa: PLC0415

    calendar = synthetic.calendar(size)
    events = list(calendar.events)
    before = _peak_mb()
    header = feeds.Header("Benchmark", "", timedelta(hours=1))

    def entries(items: list[object]) -> list[feeds.Entry]:
        return [feeds.Entry(e, revisions.revise(e, None, synthetic.STAMP)) for e in items]  # type: ignore[arg-type]

    if impl == "eventwatch":
        prepared = entries(events)
        start = time.perf_counter()
        body = feeds.Renderer().render(header, prepared).body
    elif impl == "eventwatch-edit":
        renderer = feeds.Renderer()
        prepared = entries(events)
        renderer.render(header, prepared)
        edited = events[len(events) // 2].model_copy(update={"title": "Edited"})
        revision = revisions.revise(edited, prepared[len(events) // 2].revision, synthetic.STAMP + timedelta(hours=1))
        prepared[len(events) // 2] = feeds.Entry(edited, revision)
        start = time.perf_counter()
        body = renderer.render(header, prepared).body
    elif impl == "eventwatch-restart":
        import tempfile  # noqa: PLC0415

        from eventwatch import feedcache  # noqa: PLC0415

        prepared = entries(events)
        first = feeds.Renderer()
        cold = first.render(header, prepared).body
        with tempfile.TemporaryDirectory() as folder:
            feedcache.save(Path(folder), cold, first.placements(cold))
            del first, cold
            start = time.perf_counter()  # reading the cache back is part of the restart
            body_and_places = feedcache.load(Path(folder))
            assert body_and_places is not None
            renderer = feeds.Renderer()
            renderer.seed(*body_and_places)
            body = renderer.render(header, prepared).body
    elif impl == "naive":
        import naive  # noqa: PLC0415

        start = time.perf_counter()
        body = naive.render(events, synthetic.STAMP)
    elif impl == "template":
        import template_writer  # noqa: PLC0415

        start = time.perf_counter()
        body = template_writer.render(events, synthetic.STAMP)
    else:
        raise SystemExit(f"unknown implementation {impl}")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": len(body), "peak_mb": _peak_mb(), "input_mb": before}


def measure_node(size: int) -> dict[str, float] | None:
    """ical-generator on the same events, when node and npm are here."""
    if not shutil.which("node") or not shutil.which("npm"):
        return None
    node_dir = HERE / "node"
    if not (node_dir / "node_modules" / "ical-generator").exists():
        subprocess.run(
            ["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(node_dir), "ical-generator@8"],
            check=True,
            capture_output=True,
        )
    events = synthetic.events(size)
    payload = json.dumps(
        [
            {
                "id": e["id"],
                "title": e["title"],
                "description": e["description"],
                "location": e["location"],
                "categories": e["categories"],
                "start": str(e["start"]),
                "end": str(e.get("end", e["start"])),
                "allDay": "end" not in e,
                "timezone": e.get("timezone", "Europe/Brussels"),
            }
            for e in events
        ],
    )
    done = subprocess.run(
        ["node", str(node_dir / "ical_generator.mjs")],
        input=payload,
        capture_output=True,
        text=True,
        check=True,
        cwd=node_dir,
    )
    return dict(json.loads(done.stdout))


def run_one(impl: str, size: int) -> dict[str, float] | None:
    """One measurement in a fresh process."""
    if impl == "ical-generator":
        return measure_node(size)
    done = subprocess.run(
        [sys.executable, __file__, "--one", impl, str(size)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(done.stdout))


def main() -> None:
    """Measure every implementation at every size and print the table with ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", nargs=2, metavar=("IMPL", "SIZE"))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]))))
        return
    print(f"# feed rendering, {platform.node()} ({platform.machine()}, {platform.python_version()}), "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"{'events':>7} {'implementation':<18} {'seconds':>8} {'MB/s':>7} {'peak MB':>8} {'vs naive':>9} {'vs template':>12}")
    for size in (int(s) for s in args.sizes.split(",")):
        results = {impl: run_one(impl, size) for impl in IMPLEMENTATIONS}
        naive_s = results["naive"]["seconds"] if results["naive"] else float("nan")
        template_s = results["template"]["seconds"] if results["template"] else float("nan")
        for impl, found in results.items():
            if found is None:
                print(f"{size:>7} {impl:<18} {'(not available)':>8}")
                continue
            speed = found["bytes"] / 1e6 / found["seconds"]
            print(
                f"{size:>7} {impl:<18} {found['seconds']:8.3f} {speed:7.1f} {found['peak_mb']:8.0f} "
                f"{naive_s / found['seconds']:8.2f}x {found['seconds'] / template_s:11.2f}x",
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
