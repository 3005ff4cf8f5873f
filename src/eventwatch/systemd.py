"""Everything systemd: sd_notify datagrams, the watchdog interval and socket activation.

The notify protocol is one datagram of ``KEY=VALUE`` lines to the socket named in
``$NOTIFY_SOCKET`` (a path, or an abstract socket when it starts with ``@``). Without the
variable, as outside systemd, every call does nothing. Socket activation passes the HTTP port
as file descriptor 3 (``$LISTEN_FDS``, ``$LISTEN_PID``); without it the port is bound here.
A few lines of our own: the maintained libraries either wrap libsystemd (a C build) or have
not changed since 2017.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from eventwatch import logs
from eventwatch.errors import OperationError

log = logs.get("systemd")

_daemon_log = logs.get("daemon")
"""Which socket the daemon serves on has always been the daemon's line in the journal."""


class Notifier:
    """Sends state changes to the service manager, if one listens."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        """Read ``$NOTIFY_SOCKET`` and ``$WATCHDOG_USEC`` from ``environ`` (the process's)."""
        env = os.environ if environ is None else environ
        target = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + target[1:] if target.startswith("@") else target
        self.watchdog = _watchdog(env)
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens."""
        return bool(self.address)

    def notify(self, **fields: str | int) -> bool:
        """Send ``fields`` as one datagram (``ready=1`` becomes ``READY=1``); whether it went.

        A failure is logged and otherwise ignored: the service manager's bookkeeping is never a
        reason to stop sending reminders.
        """
        if not self.address:
            return False
        data = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(data, self.address)
        except OSError as exc:
            log.warning("notify failed", socket=self.address.lstrip("\0"), error=exc.strerror)
            return False
        return True

    def close(self) -> None:
        """Close the socket, if one was opened."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _watchdog(env: os._Environ[str] | dict[str, str]) -> timedelta | None:
    """How often to ping the watchdog: half of ``$WATCHDOG_USEC``, if it is meant for us."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return timedelta(microseconds=int(usec) / 2)


def listening_socket(host: str, port: int) -> socket.socket:
    """The HTTP port: handed over by systemd (``LISTEN_FDS``, socket activation) or bound here.

    Binding here, before uvicorn starts, turns a port in use into a one-line error, and
    means the port answers by the time the daemon tells systemd it is ready.
    """
    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS") == "1":
        for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
            os.environ.pop(name, None)  # not for any child process
        sock = socket.socket(fileno=3)
        sock.set_inheritable(False)
        _daemon_log.info("listening on the socket systemd passed", address=sock.getsockname())
        return sock
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        msg = f"cannot listen on {host}:{port}: {exc.strerror} (server.host, server.port)"
        raise OperationError(msg) from None
