"""Where a benchmark ran and what it measured: the machine, and the code's commit."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """Host name, cores, CPU model, memory and Python version."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB"
    python = platform.python_version()
    return f"{platform.node()}: {os.cpu_count()} cores, {model}{memory}, Python {python}"


def revision() -> str:
    """The commit measured, and whether src/ differs from it (others may be editing it).

    Daemons started by a benchmark import eventwatch as its own process does: from elsewhere
    when PYTHONPATH says so (a copy of one commit's src/, say), and then that is what ran.
    """
    import eventwatch  # noqa: PLC0415 - after the benchmark has set its path

    used = Path(eventwatch.__file__).resolve().parent.parent
    if used != ROOT / "src":
        return f"eventwatch imported from {used}"
    found = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    changed = [p for p in dirty if p.startswith("src/")]
    if not changed:
        return f"{found or 'unknown'} (src/ clean)"
    return f"{found or 'unknown'} with uncommitted changes in {', '.join(changed)}"
