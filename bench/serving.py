"""HTTP benchmark (issue 13, target 6): wrk against the daemon's 10,000-event feed, beside a bare app.

    python bench/serving.py

wrk on loopback asks the daemon's cached feed for 200s, then 304s (If-None-Match with its
ETag), and the same of a bare ASGI app (bench/bare_app.py) answering the same bytes on the
same uvicorn server; the ratios of their request rates are set against the targets: 304s at
>= 0.80x the bare app, 200s at >= 0.90x.
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import synthetic  # noqa: E402
from provenance import machine, revision  # noqa: E402 - from this folder, on the path above

EVENTS = 10000
DURATION = "8s"
CONNECTIONS = "16"
TARGETS = {"304": 0.80, "200": 0.90}  # eventwatch's rate over the bare app's, at least


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait(url: str) -> None:
    """Until ``url`` answers."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()  # noqa: S310 - loopback, our server
        except OSError:
            time.sleep(0.2)
        else:
            return
    raise SystemExit(f"{url} did not answer")


def wrk(url: str, etag: str | None = None) -> float:
    """Requests per second wrk reaches against ``url``."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}", "--latency", url]
    if etag:
        command[1:1] = ["-H", f"If-None-Match: {etag}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


def verdict(figure: float, target: float) -> str:
    """PASS when ``figure`` is at or over ``target``."""
    return "PASS" if figure >= target else "MISS"


def main() -> None:
    """Start both servers, measure 200 and 304 on each, print the ratios beside the targets."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    measured = revision()
    print("# eventwatch HTTP (issue 13, target 6): wrk against the daemon and a bare ASGI app")
    print(f"# {machine()}; {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"# code at {measured}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "calendars").mkdir()
        (root / "calendars" / "bench.toml").write_text(synthetic.toml(EVENTS), encoding="utf-8")
        (root / "eventwatch.toml").write_text('state_dir = "state"\n[feeds]\ngzip = false\n')
        port = free_port()
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "eventwatch"), "--config", str(root / "eventwatch.toml"),
             "--set", f"server.port={port}", "run"],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}/feeds/all.ics"
        try:
            wait(url)
            with urllib.request.urlopen(url) as response:  # noqa: S310 - loopback
                body, etag = response.read(), response.headers["ETag"]
            (root / "body.ics").write_bytes(body)
            bare_port = free_port()
            bare = subprocess.Popen(
                [sys.executable, str(HERE / "bare_app.py"), str(root / "body.ics"), etag, str(bare_port)],
                stderr=subprocess.DEVNULL,
            )
            bare_url = f"http://127.0.0.1:{bare_port}/feeds/all.ics"
            try:
                wait(bare_url)
                results = {
                    "eventwatch 200": wrk(url),
                    "bare ASGI 200": wrk(bare_url),
                    "eventwatch 304": wrk(url, etag),
                    "bare ASGI 304": wrk(bare_url, etag),
                }
            finally:
                bare.send_signal(signal.SIGTERM)
                bare.wait(10)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(10)
    print(f"# {EVENTS} events ({len(body) / 1e6:.1f} MB feed, uncompressed), "
          f"wrk -t2 -c{CONNECTIONS} -d{DURATION} each, on loopback")  # fmt: skip
    for name, rate in results.items():
        print(f"{name:<16} {rate:10.0f} req/s")
    print()
    print("## Against the targets (eventwatch's rate over the bare app's)")
    for kind, label in (("304", "6. 304s vs bare ASGI app"), ("200", "6. feed 200s vs bare ASGI app")):
        ours, theirs = results[f"eventwatch {kind}"], results[f"bare ASGI {kind}"]
        ratio = ours / theirs
        target = TARGETS[kind]
        print(f"{label:<38} {ratio:8.2f} x  target >= {target:6.2f} x  {verdict(ratio, target)}   "
              f"{ours:.0f} vs {theirs:.0f} req/s")  # fmt: skip
    after = revision()
    if after != measured:
        print(f"NOTE: the code changed during the run: {measured} at the start, {after} at the end")


if __name__ == "__main__":
    main()
