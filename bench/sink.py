"""A local SMTP sink in its own process: accepts every message and notes when it arrived.

    python bench/sink.py PORT OUT

Prints ``ready`` once it listens on 127.0.0.1:PORT; on SIGTERM writes one line per message to
OUT (``arrival-unix-time recipient``) and exits. Running the sink apart from the sender keeps
the two from sharing one interpreter, so the sender's rate is its own.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    """Accepts every message and notes when each arrived, and to whom."""

    def __init__(self) -> None:
        self.arrived: list[tuple[float, str]] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802, ANN401, ARG002
        with self.lock:
            self.arrived.append((time.time(), envelope.rcpt_tos[0]))
        return "250 OK"


def main() -> None:
    port, out = int(sys.argv[1]), Path(sys.argv[2])
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    controller.start()
    print("ready", flush=True)
    done.wait()
    controller.stop()
    with sink.lock:
        out.write_text("".join(f"{t:.6f} {rcpt}\n" for t, rcpt in sink.arrived))


if __name__ == "__main__":
    main()
