"""Start-up and timing with 100,000 pending reminders, through the real daemon.

1. Start-up: ``eventwatch run`` as a subprocess over 1,000 events x 100 recipients, due in a
   month (100,000 pending reminders): seconds from launch until ``/healthz`` answers, and the
   process's peak memory (VmHWM), on the first start (empty ledger: every row inserted) and on
   a restart (the ledger already holds the 100,000 rows).
2. Lateness: 1,000 more reminders, one recipient each, due spread over one minute while the
   100,000 stay pending, delivered over SMTP to an aiosmtpd sink in its own process; lateness
   is each message's arrival at the sink minus its due instant.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

PENDING_EVENTS, PENDING_RECIPIENTS, SOON = 1_000, 100, 1_000
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stamp(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S")


def pending_calendar(start: datetime) -> str:
    recipients = ", ".join(f'{{ address = "p{n}@example.org" }}' for n in range(PENDING_RECIPIENTS))
    lines = [
        'name = "Pending"',
        'timezone = "UTC"',
        "[reminders]",
        'offsets = ["PT1H"]',
        f"recipients = [{recipients}]",
    ]
    for n in range(PENDING_EVENTS):
        at = start + timedelta(minutes=n)
        lines += [
            "[[events]]",
            f'id = "p{n}"',
            f'title = "Pending {n}"',
            f"start = {stamp(at)}",
            f"end = {stamp(at + timedelta(minutes=30))}",
        ]
    return "\n".join(lines) + "\n"


def soon_calendar(first_due: datetime) -> tuple[str, dict[str, float]]:
    """SOON events whose one recipient each is due between first_due and a minute later."""
    lines = ['name = "Soon"', 'timezone = "UTC"', "[reminders]", 'offsets = ["PT1H"]']
    due: dict[str, float] = {}
    for n in range(SOON):
        at = first_due + timedelta(seconds=n * 60 // SOON)
        address = f"s{n}@example.org"
        due[address] = at.timestamp()
        lines += [
            "[[events]]",
            f'id = "s{n}"',
            f'title = "Soon {n}"',
            f"start = {stamp(at + timedelta(hours=1))}",
            f"end = {stamp(at + timedelta(hours=2))}",
            f'reminders = {{ recipients = [{{ address = "{address}" }}] }}',
        ]
    return "\n".join(lines) + "\n", due


def config(folder: Path, http: int, smtp: int) -> Path:
    path = folder / "eventwatch.toml"
    path.write_text(
        'calendars_dir = "calendars"\nstate_dir = "state"\n'
        f'[server]\nhost = "127.0.0.1"\nport = {http}\n'
        '[mail]\ndelivery = "smtp"\nfrom = "eventwatch@example.org"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp}\nsecurity = "none"\n'
    )
    return path


def peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(path: Path, http: int) -> tuple[subprocess.Popen[bytes], float]:
    """Launch the daemon; return it and the seconds until /healthz answered."""
    began = time.perf_counter()
    daemon = subprocess.Popen(
        [sys.executable, "-m", "eventwatch", "--config", str(path), "run"],
        stderr=subprocess.DEVNULL,
    )
    while True:
        if daemon.poll() is not None:
            raise SystemExit(f"daemon exited with {daemon.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http}/healthz", timeout=1):
                return daemon, time.perf_counter() - began
        except OSError:
            time.sleep(0.02)


def stop(daemon: subprocess.Popen[bytes]) -> None:
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=30)


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "calendars").mkdir()
        http, smtp = free_port(), free_port()
        path = config(folder, http, smtp)
        month = datetime.now(UTC).replace(microsecond=0, second=0) + timedelta(days=30)
        (folder / "calendars" / "pending.toml").write_text(pending_calendar(month))
        arrivals = folder / "arrivals.txt"
        sink = subprocess.Popen(
            [sys.executable, str(HERE / "sink.py"), str(smtp), str(arrivals)],
            stdout=subprocess.PIPE,
        )
        assert sink.stdout is not None
        sink.stdout.readline()
        try:
            daemon, first = start(path, http)
            first_peak = peak_mb(daemon.pid)
            stop(daemon)
            daemon, again = start(path, http)
            again_peak = peak_mb(daemon.pid)
            stop(daemon)
            first_due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=int(again) + 10)
            text, due = soon_calendar(first_due)
            (folder / "calendars" / "soon.toml").write_text(text)
            daemon, _ = start(path, http)
            time.sleep(max(0.0, first_due.timestamp() + 65 - time.time()))
            stop(daemon)
        finally:
            sink.send_signal(signal.SIGTERM)
            sink.wait(timeout=30)
        late = sorted(
            float(t) - due[rcpt]
            for t, rcpt in (line.split() for line in arrivals.read_text().splitlines())
            if rcpt in due
        )
    cuts = statistics.quantiles(late, n=100)
    print(f"# pending reminders: {PENDING_EVENTS * PENDING_RECIPIENTS} pending, "
          f"{platform.node()} ({platform.python_version()}, {os.cpu_count()} cores), "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"first start (empty ledger): ready in {first:.2f} s, peak {first_peak:.0f} MB")
    print(f"restart (ledger holds them): ready in {again:.2f} s, peak {again_peak:.0f} MB")
    print(f"lateness of {len(late)} of {SOON} reminders over one minute: p50 {cuts[49]:.3f} s, "
          f"p99 {cuts[98]:.3f} s, max {late[-1]:.3f} s")


if __name__ == "__main__":
    main()
