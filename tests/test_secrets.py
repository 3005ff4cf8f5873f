"""A secret goes to the SMTP server's AUTH and nowhere else: not logs, ledger, pages or mail."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from aiosmtpd.smtp import AuthResult

from .helpers import COMMAND, Recorder, Running, Server, reminder_site, wait_for

if TYPE_CHECKING:
    from pathlib import Path

CANARY = "canary-7Qx3-Zk9w"
"""A password no other text contains, so that any copy of it is a leak."""


def _with_password(root: Path, how: str) -> dict[str, str]:
    """Give the site ``CANARY`` as its SMTP password by ``how``; the environment to run with."""
    config = root / "config" / "eventwatch.toml"
    text = config.read_text().replace("timeout = 5\n", 'timeout = 5\nusername = "eventwatch"\n')
    if how == "settings file":
        text = text.replace(
            'username = "eventwatch"\n', f'username = "eventwatch"\npassword = "{CANARY}"\n'
        )
    config.write_text(text)
    if how == "environment":
        return {"EVENTWATCH_SMTP__PASSWORD": CANARY}
    if how == "credential":
        folder = root / "credentials"
        folder.mkdir()
        (folder / "smtp-password").write_text(CANARY + "\n")
        return {"CREDENTIALS_DIRECTORY": str(folder)}
    return {}


HOW = ["environment", "credential", "settings file"]


class CanaryRecorder(Recorder):
    """The recording SMTP server, taking ``CANARY`` as the password."""

    def authenticate(self, *args: Any) -> AuthResult:  # noqa: ANN401
        """Accept ``eventwatch`` with ``CANARY``; remember every attempt."""
        data = args[-1]
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=(login, password) == ("eventwatch", CANARY), handled=False)


@pytest.mark.parametrize("how", HOW)
def test_a_password_is_never_shown_with_another_setting_invalid(tmp_path: Path, how: str) -> None:
    """check, with the password set and another setting invalid, prints the error, not it."""
    reminder_site(tmp_path, 25, datetime.now(UTC), datetime.now(UTC))
    env = _with_password(tmp_path, how)
    done = subprocess.run(
        [str(COMMAND), "--config", str(tmp_path / "config" / "eventwatch.toml"),
         "--set", "smtp.port=0", "--set", f"smtp.password={CANARY}x", "check"],
        capture_output=True, text=True, check=False, env=os.environ | env,
    )  # fmt: skip
    assert done.returncode == 2
    assert "smtp.port" in done.stderr
    assert CANARY not in done.stdout + done.stderr


@pytest.mark.parametrize("how", HOW)
def test_a_password_reaches_the_server_and_no_output(tmp_path: Path, how: str) -> None:
    """AUTH gets the password; the log, ledger, health, metrics, feeds, page and mail do not."""
    recorder = CanaryRecorder()
    server = Server(recorder, auth_require_tls=False)
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        reminder_site(tmp_path, server.port, now + timedelta(seconds=2), now + timedelta(hours=1))
        running = Running(tmp_path, env=_with_password(tmp_path, how))
        wait_for(lambda: len(recorder.received) == 1, timeout=20)
        shown = "".join(
            httpx.get(f"{running.url}{path}", timeout=5).text
            for path in ("/healthz", "/metrics", "/feeds/all.ics", "/feeds/test.ics", "/")
        )
        code, log = running.stop()
    finally:
        server.stop()
    assert code == 0
    assert recorder.logins == [("eventwatch", CANARY)]
    assert CANARY not in shown
    assert CANARY not in log
    assert CANARY.encode() not in recorder.received[0].content
    for stored in (tmp_path / "state").iterdir():
        if stored.is_file():
            assert CANARY.encode() not in stored.read_bytes(), stored
