"""The installed command on hostile input: exit 2, one line a problem, no traceback, no secret."""

from __future__ import annotations

import os
import resource
import subprocess
from typing import TYPE_CHECKING

import pytest

from . import hostile
from .helpers import COMMAND

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import Site

CANARY = "canary-0d9e4f"
"""A password no output may ever contain."""


def _bounded() -> None:
    """In the child: a memory ceiling, so that reading /dev/zero fails fast instead of thrashing."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


def check(config: Path, *extra: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``eventwatch --config CONFIG [EXTRA] check``; its exit code, stdout and stderr."""
    done = subprocess.run(
        [str(COMMAND), "--config", str(config), *extra, "check"],
        capture_output=True, text=True, check=False, timeout=60, env=env, preexec_fn=_bounded,
    )  # fmt: skip
    return done.returncode, done.stdout, done.stderr


def test_each_hostile_calendar_entry_is_one_line(site: Site) -> None:
    """Every kind of entry that is no calendar file gives its line; the good calendar is read."""
    expected = [
        f"calendars/{kind}.toml: {hostile.make(kind, site.calendars / f'{kind}.toml')}"
        for kind in sorted(hostile.MAKERS)
    ]
    hostile.write_bytes_named(site.calendars, b"\xff.toml", b'name = "X"\ntimezone = "UTC"\n')
    expected.append(r"calendars/\xff.toml: file name: '\xff' is not a valid id")
    with hostile.fifos_unblocked(site.calendars, after=20):
        code, out, err = check(site.config)
    assert (code, out) == (2, ""), err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == len(expected), lines
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start), line


@pytest.mark.parametrize("kind", ["loop", "fifo", "zero"])  # the rest: tests/test_settings.py
def test_hostile_settings_file_is_one_line(tmp_path: Path, kind: str) -> None:
    """A settings file that crashed, hung or ate memory is named with why, on one line, exit 2."""
    message = hostile.make(kind, tmp_path / "eventwatch.toml")
    with hostile.fifos_unblocked(tmp_path, after=20):
        code, out, err = check(tmp_path / "eventwatch.toml")
    assert (code, out, err) == (2, "", f"eventwatch.toml: {message}\n")


class TestCanary:
    """A password given each way, with another setting wrong: the output never holds it."""

    def _environment(self, **extra: str) -> dict[str, str]:
        """This process's (cleaned) environment, with ``extra`` added."""
        return {**os.environ, **extra}

    def _assert_hidden(self, code: int, out: str, err: str, wrong: str) -> None:
        assert code == 2
        assert "Traceback" not in err
        assert wrong in err, err  # the other mistake is reported ...
        assert (out + err).count(CANARY) == 0  # ... and the password nowhere

    def test_in_the_environment(self, site: Site) -> None:
        """EVENTWATCH_SMTP__PASSWORD beside a port out of range."""
        site.write_config("[server]\nport = 0\n")
        env = self._environment(EVENTWATCH_SMTP__PASSWORD=CANARY)
        self._assert_hidden(*check(site.config, env=env), wrong="server.port")

    def test_in_broken_json(self, site: Site) -> None:
        """EVENTWATCH_SMTP with the password in JSON that does not parse."""
        site.write_config("[server]\nport = 0\n")
        env = self._environment(EVENTWATCH_SMTP=f'{{"password": "{CANARY}", ')
        self._assert_hidden(*check(site.config, env=env), wrong="$EVENTWATCH_SMTP: not valid JSON")

    def test_in_a_credential(self, site: Site, tmp_path: Path) -> None:
        """$CREDENTIALS_DIRECTORY/smtp-password beside a port out of range."""
        (tmp_path / "credentials").mkdir()
        (tmp_path / "credentials" / "smtp-password").write_text(CANARY + "\n")
        site.write_config("[server]\nport = 0\n")
        env = self._environment(CREDENTIALS_DIRECTORY=str(tmp_path / "credentials"))
        self._assert_hidden(*check(site.config, env=env), wrong="server.port")

    def test_in_the_settings_file(self, site: Site) -> None:
        """password in [smtp] beside a mistyped key in the same section."""
        site.write_config(f'[smtp]\npassword = "{CANARY}"\nhots = "mail.example.org"\n')
        self._assert_hidden(*check(site.config), wrong="smtp.hots: unknown key")

    def test_in_a_password_file_named_wrong(self, site: Site) -> None:
        """The password given as password_file by mistake: the path is not shown either."""
        site.write_config(f'[smtp]\npassword_file = "{CANARY}"\n')
        self._assert_hidden(*check(site.config), wrong="smtp.password_file: cannot read")

    def test_in_a_mistyped_set(self, site: Site) -> None:
        """--set smtp..password=PASSWORD, the issue's example, beside a port out of range."""
        site.write_config("[server]\nport = 0\n")
        pairs = ["--set", f"smtp..password={CANARY}", "--set", f"smtp.password:{CANARY}"]
        code, out, err = check(site.config, *pairs)
        assert len(err.splitlines()) == 2, err
        self._assert_hidden(code, out, err, wrong="--set: smtp..password: expected KEY=VALUE")
