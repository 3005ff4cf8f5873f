"""100,000 events in the running daemon (issue 13, targets 4 and 5), measured from outside.

    python bench/large.py

The real daemon (``eventwatch --config X run``) runs as a process on 10 calendar files of
10,000 events each (bench/whole_path.py's events: every tenth all-day, the rest timed in two
zones, ~600-character descriptions; each file its own seed and event ids; ``offsets = []``,
so no reminders are planned, as in whole_path.py), a fresh state_dir and a free loopback port.

4. Cold start to ready: from spawning the process until it sends READY=1 to ``$NOTIFY_SOCKET``
   (a datagram socket this script binds, as systemd does; the HTTP port answers by then). The
   daemon's log lines are printed with their time since the spawn, to show where it goes.
   Steady RSS: after ready, every feed is fetched once plain and once gzip-compressed (as
   calendar clients ask), then 304s, ``/healthz`` and the index page; two seconds later
   ``VmRSS`` (the target) and ``VmHWM`` (the peak) are read from ``/proc/PID/status``.
   MB here are 10^6 bytes.
5. Reload after one edited event, three times: one event's title changes in one file, the
   daemon gets SIGHUP. A probe process (``--probe``) meanwhile sends paced requests on
   keep-alive connections, each timed: a conditional GET answered 304 on an unchanged
   calendar's feed (every 2 ms), ``/healthz`` (every 10 ms), and a conditional GET on the
   edited calendar's feed with its old ETag, whose first 200 is the moment the new feed is
   served (it must hold the new title). Reported: SIGHUP to new feed, minus the ``tomllib``
   parse of that one file timed in this process; the 304s' latency while the reload runs
   (SIGHUP until the daemon's next READY=1), the largest against the 50 ms target; their rate
   then beside the rate in the 2 s before. Paced rather than back-to-back, so that the probe
   does not itself slow the reload it watches: a stalled loop shows as latency and a lower rate.
   A fourth reload with no requests at all shows what the probe's load adds to the reload.

The settings set ``reload_every = "PT1H"``: only the SIGHUP reloads, so the file watcher cannot
pick the edit up on its own first. The daemon is stopped with SIGTERM (by its PID) and the
temporary folder removed at the end, also on failure.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
COMMAND = Path(sys.executable).parent / "eventwatch"
sys.path.insert(0, str(HERE))

from provenance import machine, revision  # noqa: E402 - from this folder, on the path above
from whole_path import _environment, _tables, calendar_toml, versions  # noqa: E402 - as above

CALENDARS = 10
PER_FILE = 10000
EDITED_CALENDAR = CALENDARS - 1  # the file whose event changes (bench-9)
PROBED_CALENDAR = 0  # the unchanged feed the 304s are asked of (bench-0)
EDITED_EVENT = 5000
RELOADS = 3
START_LIMIT = 180.0  # seconds: a daemon not ready by then has failed
RELOAD_LIMIT = 180.0
SETTLE = 2.0  # seconds between the last fetch and reading RSS
BASELINE = 2.0  # seconds of probing before each SIGHUP
AFTER = 0.5  # seconds of probing after the reload's READY=1
PACE = {"304": 0.002, "healthz": 0.010, "watch": 0.002}  # seconds between request starts
TARGETS = {"start": 15.0, "rss": 400.0, "reload": 0.5, "stall": 50.0}
MAX_FILE = 64 * 2**20  # a calendar file may be at most this big


# -- the files ----------------------------------------------------------------------------------


def calendar_text(number: int) -> tuple[str, str]:
    """Calendar ``bench-<number>`` as TOML, with its own seed and ids; and its edited title."""
    tables = _tables(PER_FILE, seed=13 + number)
    for table in tables:
        table["id"] = f"c{number}-{table['id']}"
    text = calendar_toml(tables)
    if len(text.encode()) > MAX_FILE:
        sys.exit(f"bench-{number}.toml would be {len(text.encode())} bytes, over the 64 MiB limit")
    return text, str(tables[EDITED_EVENT]["title"])


def config_toml(calendars: Path, state: Path, port: int) -> str:
    """Settings for the benchmark daemon; reloads only on SIGHUP (see the module docstring)."""
    return "\n".join(
        [
            f"calendars_dir = {json.dumps(str(calendars))}",
            f"state_dir = {json.dumps(str(state))}",
            "[server]",
            'host = "127.0.0.1"',
            f"port = {port}",
            "[feeds]",
            'reload_every = "PT1H"',
            "",
        ],
    )


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the daemon as a process --------------------------------------------------------------------


class Notifications:
    """systemd's end of ``$NOTIFY_SOCKET``: every datagram, with the time it came."""

    def __init__(self, path: Path) -> None:
        """Bind the socket at ``path`` and start receiving."""
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.settimeout(0.2)
        self.received: list[tuple[float, dict[str, str]]] = []
        self._changed = threading.Condition()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            at = time.monotonic()
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._changed:
                self.received.append((at, fields))
                self._changed.notify_all()

    def ready_after(self, since: float, limit: float, process: subprocess.Popen[bytes]) -> float:
        """When READY=1 came after ``since``; exits if the daemon ends or ``limit`` passes."""
        deadline = time.monotonic() + limit
        with self._changed:
            while True:
                for at, fields in self.received:
                    if at >= since and fields.get("READY") == "1":
                        return at
                if process.poll() is not None:
                    sys.exit(f"the daemon exited ({process.returncode}) before READY=1")
                if time.monotonic() > deadline:
                    sys.exit(f"no READY=1 within {limit:.0f} s")
                self._changed.wait(0.2)

    def close(self) -> None:
        """Stop receiving."""
        self._done.set()
        self._thread.join()
        self.socket.close()


class Daemon:
    """``eventwatch run`` as a process, its stderr lines kept with the time each came."""

    def __init__(self, config: Path, notify: Path, cwd: Path) -> None:
        """Spawn it; ``spawned`` is the monotonic time just before."""
        env = _environment() | {"NOTIFY_SOCKET": str(notify)}
        self.spawned = time.monotonic()
        self.process = subprocess.Popen(
            [str(COMMAND), "--config", str(config), "run"],
            cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip()))

    def status(self) -> dict[str, int]:
        """VmRSS and VmHWM in kB (KiB), from ``/proc/PID/status``."""
        found: dict[str, int] = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in {"VmRSS", "VmHWM"}:
                found[key] = int(value.split()[0])
        return found

    def lines_since(self, since: float, until: float | None = None) -> list[str]:
        """The log lines that came in the interval, each with its seconds since ``since``."""
        return [
            f"  +{at - since:7.3f} s  {line[:150]}"
            for at, line in list(self.lines)
            if at >= since and (until is None or at <= until)
        ]

    def stop(self) -> float | None:
        """SIGTERM by PID, then SIGKILL if it is not gone in 60 s; seconds it took to exit."""
        if self.process.poll() is not None:
            return None
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            return None
        finally:
            self._reader.join(5)
        return time.monotonic() - began


def mb(kib: int) -> float:
    """kB (KiB) as /proc gives them, in MB of 10^6 bytes."""
    return kib * 1024 / 1e6


# -- HTTP ---------------------------------------------------------------------------------------


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """One GET on a fresh connection: status, ETag, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("ETag") or "", response.read()
    finally:
        connection.close()


def probe_child(arguments: list[str]) -> None:
    """Paced requests on three keep-alive connections until stdin closes; print them as JSON.

    ``arguments``: the port, the probed feed and its ETag, the watched feed and its ETag, the
    title the watched feed's next version holds. Each sample is ``[start, end, status]`` in
    ``time.monotonic()`` seconds (CLOCK_MONOTONIC, the same clock in every process). The
    watcher stops at its first 200 and says whether the body held the title.
    """
    port, probed, probed_etag, watched, watched_etag, title = int(arguments[0]), *arguments[1:6]
    sys.setswitchinterval(0.0005)  # the threads' own GIL hand-offs are not the daemon's latency
    stop = threading.Event()
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in PACE}
    served: dict[str, object] = {}

    def run(name: str, path: str, headers: dict[str, str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        pace = PACE[name]
        due = time.monotonic()
        while not stop.is_set():
            start = time.monotonic()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            end = time.monotonic()
            samples[name].append((start, end, response.status))
            if name == "watch" and response.status == 200:  # noqa: PLR2004
                served.update(at=end, etag=response.getheader("ETag"), holds=title.encode() in body)
                break
            due = max(due + pace, end)
            time.sleep(max(0.0, due - time.monotonic()))
        connection.close()

    threads = [
        threading.Thread(target=run, args=("304", f"/feeds/{probed}.ics", {"If-None-Match": probed_etag})),
        threading.Thread(target=run, args=("healthz", "/healthz", {})),
        threading.Thread(target=run, args=("watch", f"/feeds/{watched}.ics", {"If-None-Match": watched_etag})),
    ]
    for thread in threads:
        thread.start()
    print("started", flush=True)
    sys.stdin.read()
    stop.set()
    for thread in threads:
        thread.join()
    print(json.dumps({"samples": samples, "served": served}))


class Probe:
    """The probe process: started before a SIGHUP, read after the reload."""

    def __init__(self, port: int, probed: tuple[str, str], watched: tuple[str, str], title: str) -> None:
        """Start it and wait until its connections are sending."""
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--probe", str(port), *probed, *watched, title],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_environment(),
        )  # fmt: skip
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "started":
            sys.exit("the probe did not start")

    def finish(self) -> dict[str, dict[str, object]]:
        """Stop it; its samples and what the watcher saw."""
        out, _ = self.process.communicate(timeout=60)
        return dict(json.loads(out.splitlines()[-1]))

    def kill(self) -> None:
        """If it is still running (a failure elsewhere), end it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


# -- one reload ---------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The value ``share`` of the way up the sorted ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def during(samples: list[list[float]], begin: float, end: float) -> list[list[float]]:
    """The requests that overlap ``begin``..``end``."""
    return [s for s in samples if s[1] >= begin and s[0] <= end]


def rate(samples: list[list[float]], begin: float, end: float) -> float:
    """Requests answered per second in ``begin``..``end``."""
    return sum(1 for s in samples if begin <= s[1] <= end) / (end - begin)


def edit(texts: tuple[str, str], n: int) -> tuple[str, str]:
    """A new title for the edited event (``n`` tells each reload's apart) and the file with it."""
    text, old_title = texts
    title = f"Edited in reload {n}"
    edited = text.replace(f"title = {json.dumps(old_title, ensure_ascii=False)}", f'title = "{title}"', 1)
    assert edited != text, "the edited title was not found"
    return title, edited


def quiet_reload(n: int, daemon: Daemon, notifications: Notifications, source: Path, texts: tuple[str, str]) -> float:
    """One more edit and SIGHUP with no requests meanwhile (what the probe's load costs); seconds.

    The new feed is in place when the daemon logs "reloaded"; READY=1 when that is not logged.
    """
    source.write_text(edit(texts, n)[1], encoding="utf-8")
    hup = time.monotonic()
    daemon.process.send_signal(signal.SIGHUP)
    ready = notifications.ready_after(hup, RELOAD_LIMIT, daemon.process)
    time.sleep(0.1)  # the log line comes through a pipe
    logged = [at for at, line in list(daemon.lines) if at >= hup and "daemon reloaded" in line]
    shown = f"{logged[0] - hup:.3f} s" if logged else "not logged"
    print(f"reload without requests: SIGHUP to the 'reloaded' log line (the new feed in place) {shown}, "
          f"to READY=1 {ready - hup:.3f} s; VmRSS {mb(daemon.status()['VmRSS']):.0f} MB")  # fmt: skip
    return (logged[0] if logged else ready) - hup


def reload_once(  # noqa: PLR0913 - what one reload needs to know of the run
    n: int,
    daemon: Daemon,
    notifications: Notifications,
    *,
    port: int,
    source: Path,
    texts: tuple[str, str],
) -> dict[str, float]:
    """Edit one event's title in ``source``, SIGHUP, and time what happens; the figures."""
    title, edited = edit(texts, n)
    began = time.perf_counter()
    tomllib.loads(edited)
    parse = time.perf_counter() - began

    probed = f"bench-{PROBED_CALENDAR}"
    watched = source.stem
    probed_etag = get(port, f"/feeds/{probed}.ics")[1]
    watched_etag = get(port, f"/feeds/{watched}.ics")[1]
    probe = Probe(port, (probed, probed_etag), (watched, watched_etag), title)
    try:
        time.sleep(BASELINE)
        source.write_text(edited, encoding="utf-8")
        hup = time.monotonic()
        daemon.process.send_signal(signal.SIGHUP)
        ready = notifications.ready_after(hup, RELOAD_LIMIT, daemon.process)
        time.sleep(AFTER)
        found = probe.finish()
    finally:
        probe.kill()
    served = found["served"]
    if not served:
        sys.exit(f"reload {n}: the edited feed was not served by READY=1")
    if not served["holds"]:
        sys.exit(f"reload {n}: the new feed does not hold the edited title")
    samples: dict[str, list[list[float]]] = found["samples"]  # type: ignore[assignment]
    figures: dict[str, float] = {
        "parse": parse,
        "served": float(served["at"]) - hup,  # type: ignore[arg-type]
        "ready": ready - hup,
    }
    for name in ("304", "healthz"):
        inside = during(samples[name], hup, ready)
        latencies = [1000 * (s[1] - s[0]) for s in inside]
        before = [1000 * (s[1] - s[0]) for s in during(samples[name], hup - BASELINE, hup)]
        figures[f"{name} max"] = max(latencies)
        figures[f"{name} p99"] = percentile(latencies, 0.99)
        figures[f"{name} before max"] = max(before)
        figures[f"{name} before p99"] = percentile(before, 0.99)
        figures[f"{name} rate"] = rate(samples[name], hup, ready)
        figures[f"{name} before rate"] = rate(samples[name], hup - BASELINE, hup)
        figures[f"{name} count"] = len(inside)
        figures[f"{name} other"] = sum(1 for s in inside if s[2] not in {200, 304})
    watch = [1000 * (s[1] - s[0]) for s in during(samples["watch"], hup, float(served["at"]))]  # type: ignore[arg-type]
    figures["watch max"] = max(watch[:-1] or [0.0])  # its last request carried the new feed
    print(f"reload {n + 1}: SIGHUP to new feed {figures['served']:.3f} s, to READY=1 {figures['ready']:.3f} s; "
          f"tomllib parse of the file {parse:.3f} s")  # fmt: skip
    for name in ("304", "healthz"):
        print(
            f"  {name:<8} during the reload: {figures[f'{name} count']:5.0f} requests, max {figures[f'{name} max']:7.1f} ms, "
            f"p99 {figures[f'{name} p99']:6.1f} ms, {figures[f'{name} rate']:5.0f}/s "
            f"| the 2 s before: max {figures[f'{name} before max']:5.1f} ms, p99 {figures[f'{name} before p99']:5.1f} ms, "
            f"{figures[f'{name} before rate']:5.0f}/s",
        )
        if figures[f"{name} other"]:
            print(f"  {name:<8} answered neither 200 nor 304 {figures[f'{name} other']:.0f} times during the reload")
    print(f"  watched feed's 304s until the new one: max {figures['watch max']:.1f} ms; "
          f"VmRSS after {mb(daemon.status()['VmRSS']):.0f} MB")  # fmt: skip
    print("\n".join(daemon.lines_since(hup, ready + AFTER)))
    sys.stdout.flush()
    return figures


# -- the report ---------------------------------------------------------------------------------


def _interrupted(signum: int, frame: object) -> None:
    """SIGTERM to this script: unwind, so that the daemon is stopped and the files removed."""
    del frame
    raise SystemExit(f"stopped by {signal.Signals(signum).name}")


def verdict(figure: float, target: float) -> str:
    """PASS when ``figure`` is at or under ``target``."""
    return "PASS" if figure <= target else "MISS"


def main() -> None:  # noqa: C901, PLR0915 - one measurement after another, printed in order
    """Measure targets 4 and 5 in one run and print each figure beside its target."""
    signal.signal(signal.SIGTERM, _interrupted)
    started = time.perf_counter()
    measured = revision()
    print("# eventwatch with 100,000 events (issue 13, targets 4 and 5): the daemon as a process")
    print(f"# {machine()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"# code at {measured}; {versions()}")
    texts = [calendar_text(n) for n in range(CALENDARS)]
    size = sum(len(t.encode()) for t, _ in texts)
    print(
        f"# {CALENDARS * PER_FILE} events in {CALENDARS} files of {PER_FILE} ({size / 1e6:.0f} MB of TOML); "
        f"reload times are medians of {RELOADS}, the stall the worst of {RELOADS}; MB are 10^6 bytes",
    )
    sys.stdout.flush()

    results: list[tuple[str, float, str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="ew-large-") as tmp:
        root = Path(tmp)
        calendars = root / "calendars"
        calendars.mkdir()
        for n, (text, _) in enumerate(texts):
            (calendars / f"bench-{n}.toml").write_text(text, encoding="utf-8")
        port = free_port()
        config = root / "eventwatch.toml"
        config.write_text(config_toml(calendars, root / "state", port), encoding="utf-8")
        notifications = Notifications(root / "notify.sock")
        daemon: Daemon | None = None
        try:
            daemon = Daemon(config, notifications.path, root)
            ready = notifications.ready_after(daemon.spawned, START_LIMIT, daemon.process)
            start = ready - daemon.spawned
            at_ready = daemon.status()
            print()
            print("## Target 4: cold start (fresh state_dir) to READY=1, the daemon's log lines by time since spawn")
            print("\n".join(daemon.lines_since(daemon.spawned, ready)))
            print(f"  +{start:7.3f} s  READY=1 on NOTIFY_SOCKET; VmRSS {mb(at_ready['VmRSS']):.0f} MB, "
                  f"VmHWM {mb(at_ready['VmHWM']):.0f} MB")  # fmt: skip

            names = ["all"] + [f"bench-{n}" for n in range(CALENDARS)]
            etags: dict[str, str] = {}
            sizes: dict[str, int] = {}
            for name in names:
                status, etag, body = get(port, f"/feeds/{name}.ics")
                assert status == 200, f"/feeds/{name}.ics answered {status}"  # noqa: PLR2004
                etags[name], sizes[name] = etag, len(body)
            after_plain = daemon.status()
            for name in names:
                status, _, _ = get(port, f"/feeds/{name}.ics", {"Accept-Encoding": "gzip"})
                assert status == 200, f"/feeds/{name}.ics (gzip) answered {status}"  # noqa: PLR2004
            after_gzip = daemon.status()
            for _ in range(3):
                for name in names:
                    status, _, _ = get(port, f"/feeds/{name}.ics", {"If-None-Match": etags[name]})
                    assert status == 304, f"/feeds/{name}.ics with its ETag answered {status}"  # noqa: PLR2004
            health = get(port, "/healthz")
            index = get(port, "/")
            time.sleep(SETTLE)
            steady = daemon.status()
            print()
            print("## Target 4: memory while serving (VmRSS / VmHWM from /proc/PID/status)")
            print(f"feeds: all.ics {sizes['all'] / 1e6:.0f} MB, each calendar's {sizes['bench-0'] / 1e6:.1f} MB; "
                  f"/healthz {health[0]}, index page {index[0]} ({len(index[2]) / 1e6:.1f} MB)")  # fmt: skip
            for label, found in (
                ("at READY=1", at_ready),
                ("after each feed once (200)", after_plain),
                ("after each feed once gzip (200)", after_gzip),
                (f"after 304s, /healthz, index, {SETTLE:.0f} s", steady),
            ):
                print(f"{label:<36} VmRSS {mb(found['VmRSS']):6.0f} MB   VmHWM {mb(found['VmHWM']):6.0f} MB")
            results.append(("4. cold start to READY=1", start, "fresh state_dir, spawn to READY=1", TARGETS["start"], "s"))
            results.append(
                ("4. steady RSS while serving", mb(steady["VmRSS"]),
                 f"peak (VmHWM) {mb(steady['VmHWM']):.0f} MB", TARGETS["rss"], "MB"),
            )  # fmt: skip
            sys.stdout.flush()

            print()
            print(f"## Target 5: reload after one edited event in bench-{EDITED_CALENDAR}.toml (SIGHUP), {RELOADS} times")
            source = calendars / f"bench-{EDITED_CALENDAR}.toml"
            runs = [
                reload_once(n, daemon, notifications, port=port, source=source, texts=texts[EDITED_CALENDAR])
                for n in range(RELOADS)
            ]
            quiet = quiet_reload(RELOADS, daemon, notifications, source, texts[EDITED_CALENDAR])
            after_reloads = daemon.status()
            print(f"after the reloads: VmRSS {mb(after_reloads['VmRSS']):.0f} MB, "
                  f"VmHWM {mb(after_reloads['VmHWM']):.0f} MB")  # fmt: skip

            def median(key: str) -> float:
                return statistics.median(run[key] for run in runs)

            past = statistics.median(run["served"] - run["parse"] for run in runs)
            results.append(
                ("5. reload past the parse", past,
                 (f"SIGHUP to new feed {median('served'):.3f} s, tomllib parse {median('parse'):.3f} s; "
                  f"without requests {quiet:.3f} s"), TARGETS["reload"], "s"),
            )  # fmt: skip
            worst = max(run["304 max"] for run in runs)
            results.append(
                ("5. loop stall during reload (304 max)", worst,
                 (f"median of the maxima {median('304 max'):.1f} ms, p99 {median('304 p99'):.1f} ms; "
                  f"{median('304 rate'):.0f}/s during vs {median('304 before rate'):.0f}/s before; "
                  f"/healthz max {max(run['healthz max'] for run in runs):.1f} ms"), TARGETS["stall"], "ms"),
            )  # fmt: skip
            stopped = daemon.stop()
            print(f"stopped by SIGTERM in {stopped:.2f} s" if stopped is not None else "SIGTERM did not stop it: killed")
        except BaseException:
            if daemon is not None:
                print("the daemon's last log lines:", *daemon.lines_since(daemon.spawned)[-15:], sep="\n")
            raise
        finally:
            if daemon is not None and daemon.process.poll() is None:
                daemon.stop()
            notifications.close()

    print()
    print("## Against the targets")
    for label, figure, detail, target, unit in results:
        print(f"{label:<38} {figure:8.2f} {unit:<2} target <= {target:6.2f} {unit:<2} {verdict(figure, target)}   {detail}")
    after = revision()
    if after != measured:
        print(f"NOTE: the code changed during the run: {measured} at the start, {after} at the end")
    print(f"# {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    if len(sys.argv) == 8 and sys.argv[1] == "--probe":  # noqa: PLR2004
        probe_child(sys.argv[2:])
    elif len(sys.argv) == 1:
        main()
    else:
        sys.exit(__doc__)
