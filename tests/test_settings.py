"""Settings: where they come from, which source wins, and that secrets stay secret."""

from __future__ import annotations

import functools
import json
import os
import re
import socket
import subprocess
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import hypothesis
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from pydantic import BaseModel

from eventwatch import settings
from eventwatch.errors import SettingsError
from eventwatch.settings import Settings

from . import hostile
from .conftest import SHIPPED_CONFIG
from .helpers import COMMAND, SECRET, Recorder, Running, Server, reminder_site, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable

    from .conftest import Site


def problems_of(*args: object, **kwargs: object) -> list[str]:
    """Every problem ``settings.load`` reports, as printed."""
    with pytest.raises(SettingsError) as exc:
        settings.load(*args, **kwargs)  # type: ignore[arg-type]
    return [str(p) for p in exc.value.problems]


def test_shipped_config_runs_in_place() -> None:
    """The shipped file points at the clone's calendars and a git-ignored state folder."""
    loaded = settings.load(SHIPPED_CONFIG)
    assert loaded.calendars_dir.resolve() == SHIPPED_CONFIG.parent.parent / "calendars"
    assert loaded.state_dir.resolve() == SHIPPED_CONFIG.parent.parent / "state"
    assert (loaded.server.host, loaded.server.port) == ("127.0.0.1", 8080)
    assert loaded.mail.delivery == "maildir"
    assert loaded.mail.sender == "eventwatch <eventwatch@example.org>"


def test_defaults_without_any_setting(tmp_path: Path) -> None:
    """An empty file gives the documented defaults, relative to the file's folder."""
    (tmp_path / "empty.toml").write_text("")
    loaded = settings.load(tmp_path / "empty.toml")
    assert loaded.calendars_dir == tmp_path / "calendars"
    assert loaded.state_dir == tmp_path / "state"
    assert loaded.smtp.security == "starttls"
    assert loaded.smtp.effective_port == 587
    assert [str(o) for o in loaded.reminders.offsets or ()] == ["P1D"]
    assert loaded.reminders.all_day_at == time(9)


class TestPrecedence:
    """File < environment < command line."""

    def test_environment_beats_file(self, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
        """EVENTWATCH_SERVER__PORT overrides [server] port and leaves the rest of the section."""
        site.write_config('[server]\nport = 8081\nhost = "127.0.0.2"\n')
        monkeypatch.setenv("EVENTWATCH_SERVER__PORT", "9000")
        loaded = settings.load(site.config)
        assert (loaded.server.host, loaded.server.port) == ("127.0.0.2", 9000)

    def test_command_line_beats_environment(
        self, site: Site, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """--set server.port wins over both the variable and the file."""
        site.write_config("[server]\nport = 8081\n")
        monkeypatch.setenv("EVENTWATCH_SERVER__PORT", "9000")
        loaded = settings.load(site.config, ["server.port=9100"])
        assert loaded.server.port == 9100

    def test_lists_come_from_the_environment_as_json(
        self,
        site: Site,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A list setting in a variable is JSON."""
        monkeypatch.setenv("EVENTWATCH_REMINDERS__OFFSETS", '["P2D", "PT3H"]')
        loaded = settings.load(site.config)
        assert [str(o) for o in loaded.reminders.offsets or ()] == ["P2D", "PT3H"]

    def test_set_values_are_toml(self, site: Site) -> None:
        """--set reads its value as TOML where it parses, else as a string."""
        loaded = settings.load(
            site.config,
            ['reminders.offsets=["P3D"]', "server.host=0.0.0.0", "mail.from=ops@example.org"],
        )
        assert [str(o) for o in loaded.reminders.offsets or ()] == ["P3D"]
        assert loaded.server.host == "0.0.0.0"  # noqa: S104 - a value under test, not a bind
        assert loaded.mail.sender == "ops@example.org"


class TestDiscovery:
    """Which file is read."""

    def test_explicit_path_must_exist(self, tmp_path: Path) -> None:
        """--config naming a missing file is an error, never a silent fall-back."""
        assert problems_of(tmp_path / "missing.toml") == [
            "missing.toml: settings file given by --config does not exist",
        ]

    def test_variable_path_must_exist(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """$EVENTWATCH_CONFIG naming a missing file is an error too."""
        monkeypatch.setenv("EVENTWATCH_CONFIG", "elsewhere.toml")
        assert problems_of() == [
            "elsewhere.toml: settings file given by $EVENTWATCH_CONFIG does not exist",
        ]

    def test_variable_beats_the_search_path(
        self, site: Site, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With ./config/eventwatch.toml present, $EVENTWATCH_CONFIG still wins."""
        other = site.root / "other.toml"
        other.write_text("[server]\nport = 7000\n")
        monkeypatch.setenv("EVENTWATCH_CONFIG", str(other))
        assert settings.load().server.port == 7000

    def test_search_path_finds_the_local_config(self, site: Site) -> None:
        """Without --config or the variable, ./config/eventwatch.toml is read."""
        site.write_config("[server]\nport = 7001\n")
        assert settings.load().server.port == 7001

    def test_nothing_found_says_what_was_tried(self) -> None:
        """With no file anywhere, the error lists the places looked in."""
        if Path("/etc/eventwatch/eventwatch.toml").exists():
            pytest.fail("this machine has /etc/eventwatch/eventwatch.toml; the test needs none")
        (message,) = problems_of()
        assert "no settings file" in message
        assert "config/eventwatch.toml, /etc/eventwatch/eventwatch.toml" in message

    def test_relative_paths_follow_the_file(self, site: Site) -> None:
        """A copied config folder uses its own neighbours, wherever it is run from."""
        loaded = settings.load(site.config)
        assert loaded.calendars_dir.resolve() == site.calendars.resolve()
        assert loaded.state_dir.resolve() == (site.root / "state").resolve()


class TestBadSettings:
    """Each invalid setting is named with its source."""

    def test_wrong_type_names_file_line_and_field(self, site: Site) -> None:
        """A port that is not a number points at its line."""
        site.write_config('[server]\nport = "http"\n')
        assert problems_of(site.config) == [
            (
                "config/eventwatch.toml:4: server.port: Input should be a valid integer, "
                "unable to parse string as an integer"
            ),
        ]

    def test_unknown_key_suggests_the_right_one(self, site: Site) -> None:
        """A typo in a section key is refused with the likely key."""
        site.write_config("[server]\nprot = 9000\n")
        (message,) = problems_of(site.config)
        assert message.startswith("config/eventwatch.toml:4: server.prot: unknown key")
        assert "did you mean 'port'?" in message

    def test_unknown_section_is_refused(self, site: Site) -> None:
        """A misspelt section is refused as a whole."""
        site.write_config("[sever]\nport = 9000\n")
        (message,) = problems_of(site.config)
        assert message.startswith(
            "config/eventwatch.toml:3: sever: unknown key (did you mean 'server'?)"
        )

    def test_bad_environment_value_names_the_variable(
        self,
        site: Site,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A value from the environment is blamed on the variable, not on the file."""
        monkeypatch.setenv("EVENTWATCH_SERVER__PORT", "99999")
        assert problems_of(site.config) == [
            "$EVENTWATCH_SERVER__PORT: server.port: Input should be less than or equal to 65535",
        ]

    def test_unknown_variable_is_refused(self, site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
        """EVENTWATCH_SEVER__PORT is a typo, not something to ignore."""
        monkeypatch.setenv("EVENTWATCH_SEVER__PORT", "9000")
        assert problems_of(site.config) == ["$EVENTWATCH_SEVER__PORT: names no setting"]

    def test_bad_set_value_names_the_option(self, site: Site) -> None:
        """A value given with --set is blamed on --set."""
        assert problems_of(site.config, ["smtp.security=ssl"]) == [
            "--set: smtp.security: Input should be 'starttls', 'tls' or 'none'",
        ]

    @pytest.mark.parametrize(
        ("pair", "expected"),
        [
            ("server.port", "--set: expected KEY=VALUE, e.g. server.port=9000 (--set number 1)"),
            ("=1", "--set: expected KEY=VALUE, e.g. server.port=9000"),
            ("server..port=1", "--set: server..port: expected KEY=VALUE, e.g. server.port=9000"),
        ],
    )
    def test_malformed_set_is_refused(self, site: Site, pair: str, expected: str) -> None:
        """--set needs KEY=VALUE with a dotted key; the message shows the key, not the value."""
        assert problems_of(site.config, [pair]) == [expected]

    def test_syntax_error_names_the_line(self, site: Site) -> None:
        """A TOML mistake in the settings file gives its line."""
        site.config.write_text("[server]\nport = = 1\n")
        (message,) = problems_of(site.config)
        assert message.startswith("config/eventwatch.toml:2: TOML syntax error: Invalid value")

    def test_malformed_sender_is_refused(self, site: Site) -> None:
        """The From address must be one valid address."""
        site.write_config('[mail]\nfrom = "a@example.org, b@example.org"\n')
        (message,) = problems_of(site.config)
        assert message.startswith("config/eventwatch.toml:4: mail.from: expected one address")

    def test_smtp_needs_a_sender(self, site: Site) -> None:
        """Sending through SMTP without a From address is refused before anything runs."""
        site.write_config('[mail]\ndelivery = "smtp"\n')
        assert problems_of(site.config) == [
            'config/eventwatch.toml:3: mail.from: required when delivery = "smtp"',
        ]

    def test_bad_reminder_default_is_refused(self, site: Site) -> None:
        """The defaults' offsets are checked like a calendar's."""
        site.write_config('[reminders]\noffsets = ["P1M"]\n')
        (message,) = problems_of(site.config)
        assert message.startswith(
            "config/eventwatch.toml:4: reminders.offsets[0]: 'P1M' is not a duration"
        )


class TestSecrets:
    """The SMTP password never shows."""

    SECRET = "hunter2-correct-horse"  # noqa: S105 - a test value

    def test_password_is_hidden_in_repr(self, site: Site) -> None:
        """Printing the settings shows stars, not the password."""
        site.write_config(f'[smtp]\npassword = "{self.SECRET}"\n')
        loaded = settings.load(site.config)
        assert self.SECRET not in repr(loaded)
        assert self.SECRET not in str(loaded.model_dump())
        assert loaded.smtp.password is not None
        assert loaded.smtp.password.get_secret_value() == self.SECRET

    def test_password_is_hidden_in_errors(self, site: Site) -> None:
        """A password of the wrong type is reported without its value."""
        site.write_config("[smtp]\npassword = 123456789\n")
        (message,) = problems_of(site.config)
        assert "smtp.password" in message
        assert "123456789" not in message

    def test_password_file_is_read_relative_to_the_config(self, site: Site) -> None:
        """password_file is read once, its trailing newline dropped."""
        (site.config.parent / "smtp-password").write_text(self.SECRET + "\n")
        site.write_config('[smtp]\npassword_file = "smtp-password"\n')
        loaded = settings.load(site.config)
        assert loaded.smtp.password is not None
        assert loaded.smtp.password.get_secret_value() == self.SECRET
        assert self.SECRET not in repr(loaded)

    def test_missing_password_file_is_named(self, site: Site) -> None:
        """A password file that cannot be read is named, with why."""
        site.write_config('[smtp]\npassword_file = "nope"\n')
        (message,) = problems_of(site.config)
        assert message.startswith("config/eventwatch.toml:4: smtp.password_file: cannot read ")
        assert "No such file or directory" in message

    def test_systemd_credential_is_the_password(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """$CREDENTIALS_DIRECTORY/smtp-password is read when no password is set."""
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "smtp-password").write_text(self.SECRET + "\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        site.write_config('[smtp]\nusername = "u"\n')
        loaded = settings.load(site.config)
        assert loaded.smtp.password is not None
        assert loaded.smtp.password.get_secret_value() == self.SECRET
        assert settings.SmtpSettings().password is None  # the shared default is untouched

    def test_a_set_password_beats_the_credential(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """An explicit password_file wins; the credential is for when the settings say none."""
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "smtp-password").write_text("from-systemd")
        (site.config.parent / "pw").write_text(self.SECRET)
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        site.write_config('[smtp]\npassword_file = "pw"\n')
        loaded = settings.load(site.config)
        assert loaded.smtp.password is not None
        assert loaded.smtp.password.get_secret_value() == self.SECRET

    def test_password_and_file_together_are_refused(self, site: Site) -> None:
        """Two sources for one secret is ambiguous."""
        (site.config.parent / "pw").write_text("x")
        site.write_config('[smtp]\npassword = "a"\npassword_file = "pw"\n')
        (message,) = problems_of(site.config)
        assert message.endswith("smtp.password_file: set password or password_file, not both")


# -- systemd credentials, through the installed command and the running daemon -----------


def test_smtp_password_from_credentials_directory(tmp_path: Path) -> None:
    """$CREDENTIALS_DIRECTORY/smtp-password is the password; it shows nowhere."""
    recorder = Recorder()
    server = Server(recorder, auth_require_tls=False)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "smtp-password").write_text(SECRET + "\n")
    try:
        due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        reminder_site(tmp_path, server.port, due, due + timedelta(days=30))
        config = tmp_path / "config" / "eventwatch.toml"
        config.write_text(config.read_text() + 'username = "eventwatch"\n')
        running = Running(tmp_path, {"CREDENTIALS_DIRECTORY": str(credentials)})
        wait_for(lambda: len(recorder.received) == 1, timeout=20)
        pages = [running.get(p).text for p in ("/healthz", "/metrics", "/")]
        code, log = running.stop()
    finally:
        server.stop()
    assert code == 0, log
    assert recorder.logins == [("eventwatch", SECRET)]
    for text in [*pages, log]:
        assert SECRET not in text


def test_unreadable_credential_is_a_one_line_error(tmp_path: Path) -> None:
    """A credential that cannot be read stops the start with exit 2, naming it."""
    credentials = tmp_path / "credentials"
    (credentials / "smtp-password").mkdir(parents=True)  # a folder: cannot be read as a file
    reminder_site(tmp_path, 25, datetime.now(UTC), datetime.now(UTC))
    done = subprocess.run(
        [str(COMMAND), "--config", str(tmp_path / "config" / "eventwatch.toml"), "check"],
        capture_output=True,
        text=True,
        check=False,
        env=os.environ | {"CREDENTIALS_DIRECTORY": str(credentials)},
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "smtp.password" in line
    assert "smtp-password" in line


CANARY = "canary-5e1b7d"
"""A password no message may ever contain."""

SECRET_KEYS = [
    "smtp.password",
    "smtp.password_file",
    "smtp.username",
    "smtp",
    "password",
    "database.password",
    "database.password_file",
]


@st.composite
def mistyped(draw: st.DrawFn, alphabet: str) -> str:
    """A key where a password goes, as given or with typing mistakes from ``alphabet``."""
    key = list(draw(st.sampled_from(SECRET_KEYS)))
    for at, typed in draw(st.lists(st.tuples(st.integers(0, 40), st.sampled_from(alphabet)))):
        if typed == "~":  # stands for a deleted character
            if key:
                del key[at % len(key)]
        else:
            key.insert(at % (len(key) + 1), typed)
    return "".join(key)


WRAPPED = st.sampled_from(
    ["X", '"X"', "'X", '"X', '["X"]', '{a = "X"}', "X]", "[[X", '"""X"""', "=X", '{"password": "X'],
).map(lambda template: template.replace("X", CANARY))
"""The password as a value, alone, quoted, half-quoted or inside a table or list."""


def errors_of(load: Callable[[], object]) -> str:
    """What ``load`` reports, as printed; empty when it succeeds."""
    try:
        load()
    except SettingsError as exc:
        return str(exc)
    return ""


# The site's files are only read, so one site serves every example of a test.
SHARED_SITE = hypothesis.settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


class TestNoErrorShowsASecret:
    """Whatever key a password is given under, by --set or in the environment, no error shows it."""

    @SHARED_SITE
    @given(key=mistyped(".=_-: aApPsS~"), separator=st.sampled_from(["=", ":", " ", ""]))
    @hypothesis.example(key="smtp..password", separator="=")
    @hypothesis.example(key="smtp.password", separator=" ")
    def test_set(self, site: Site, key: str, separator: str) -> None:
        """``--set KEY=PASSWORD`` with the key mistyped: errors name the key, never the value."""
        for value in ["X", '"X', '["X"]', '{a = "X"}']:
            pair = f"{key}{separator}{value.replace('X', CANARY)}"
            assert CANARY not in errors_of(functools.partial(settings.load, site.config, [pair]))

    @SHARED_SITE
    @given(key=mistyped("._AP~"), value=WRAPPED)
    @hypothesis.example(key="smtp", value='{"password": "' + CANARY + '", ')
    def test_environment(self, site: Site, key: str, value: str) -> None:
        """``EVENTWATCH_KEY=PASSWORD`` with the name mistyped or the JSON broken shows no value."""
        name = "EVENTWATCH_" + key.upper().replace(".", "__")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(name, value)
            assert CANARY not in errors_of(lambda: settings.load(site.config))


def _leaf_settings(model: type[BaseModel], section: str = "") -> list[tuple[str, str]]:
    """Every (section, key) the settings accept, as files spell them."""
    found = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        inner = info.annotation
        if isinstance(inner, type) and issubclass(inner, BaseModel) and not section:
            found += _leaf_settings(inner, key)
        else:
            found.append((section, key))
    return found


@pytest.mark.parametrize(("value", "expected"), [("DEBUG", "debug"), ("Warning", "warning")])
def test_log_level_in_any_case(site: Site, value: str, expected: str) -> None:
    """[log] level is read whatever its case."""
    site.write_config(f'[log]\nlevel = "{value}"\nformat = "json"\n')
    loaded = settings.load(site.config)
    assert (loaded.log.level, loaded.log.format) == (expected, "json")


@pytest.mark.parametrize(
    ("text", "field"),
    [('level = "loud"', "log.level"), ('format = "xml"', "log.format")],
)
def test_bad_log_setting_is_named(site: Site, text: str, field: str) -> None:
    """An unknown level or format is one line naming the file, line and field."""
    site.write_config(f"[log]\n{text}\n")
    (message,) = problems_of(site.config)
    assert message.startswith(f"config/eventwatch.toml:4: {field}: ")


def test_shipped_config_documents_every_setting() -> None:
    """Each setting appears in the shipped file, set or commented out, in its section."""
    text = SHIPPED_CONFIG.read_text()
    blocks = {"": text.split("\n[", 1)[0]}
    for block in text.split("\n[")[1:]:
        name, _, body = block.partition("]")
        blocks[name] = body
    missing = [
        f"{section}.{key}" if section else key
        for section, key in _leaf_settings(Settings)
        if not re.search(rf"^#? ?{key} = ", blocks.get(section, ""), re.MULTILINE)
    ]
    assert missing == []


@pytest.mark.parametrize("kind", sorted(hostile.MAKERS))
def test_settings_entry_that_is_no_regular_file_is_one_problem(tmp_path: Path, kind: str) -> None:
    """A settings file that is a loop, FIFO, device, folder or too large is named, not hung on."""
    message = hostile.make(kind, tmp_path / "eventwatch.toml")
    with hostile.fifos_unblocked(tmp_path):
        assert problems_of(tmp_path / "eventwatch.toml") == [f"eventwatch.toml: {message}"]


@pytest.mark.parametrize("kind", ["fifo", "zero", "folder", "huge"])
def test_password_file_that_is_no_regular_file_is_refused(site: Site, kind: str) -> None:
    """The password file is read as carefully as the settings file."""
    message = hostile.make(kind, site.config.parent / "pw")
    site.write_config('[smtp]\npassword_file = "pw"\n')
    with hostile.fifos_unblocked(site.config.parent):
        assert problems_of(site.config) == [
            "config/eventwatch.toml:4: smtp.password_file: cannot read the password file: "
            + message.removeprefix("cannot read: ")
        ]


def test_something_not_a_file_in_the_search_path_is_refused(site: Site) -> None:
    """A FIFO at ./config/eventwatch.toml is reported, not passed over for /etc's file."""
    site.config.unlink()
    os.mkfifo(site.config)
    with hostile.fifos_unblocked(site.config.parent):
        assert problems_of(None) == [
            "config/eventwatch.toml: cannot read: not a regular file but a FIFO"
        ]


class TestNesting:
    """No source of settings can nest deep enough to crash or slow the reader."""

    def test_deep_settings_file_is_refused(self, site: Site) -> None:
        """Arrays nested a thousand deep in the file give its line."""
        site.write_config(f"[server]\nhost = {'[' * 1000}{']' * 1000}\n")
        (message,) = problems_of(site.config)
        assert message.startswith("config/eventwatch.toml:4: nested more than 32 levels deep")

    @pytest.mark.parametrize(
        "pair",
        [
            "server.host=" + "[" * 1000 + "]" * 1000,
            "a" + ".a" * 20_000 + "=1",
            "a.a.a={a.a.a=" + "[" * 30 + "]" * 30 + "}",  # adds up across key and value
        ],
        ids=["deep-value", "long-key", "both"],
    )
    def test_deep_set_is_refused(self, site: Site, pair: str) -> None:
        """A --set value or key nested too deep is one problem naming its first key."""
        (message,) = problems_of(site.config, [pair])
        assert re.fullmatch(r"--set: (server|a): nested more than 32 levels deep .*", message)

    @pytest.mark.parametrize(
        ("value", "reason"),
        [("[" * 100_000, "nested too deeply to read"), ("[" * 40 + "]" * 40, "nested more than")],
    )
    def test_deep_json_variable_is_refused(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, value: str, reason: str
    ) -> None:
        """JSON in a variable is held to the same limit as the files."""
        monkeypatch.setenv("EVENTWATCH_REMINDERS__OFFSETS", value)
        (message,) = problems_of(site.config)
        assert message.startswith(f"$EVENTWATCH_REMINDERS__OFFSETS: {reason}")


class TestEnvironmentJson:
    """A table or list in a variable is JSON; when it is not, that is one problem, never a trace."""

    CANARY = "canary-7f3a9c"

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("EVENTWATCH_SMTP", '{"password": "canary-7f3a9c", '),
            ("EVENTWATCH_SMTP", "canary-7f3a9c"),
            ("eventwatch_smtp", "[canary-7f3a9c"),
            ("EVENTWATCH_REMINDERS__RECIPIENTS", '[{"address": canary-7f3a9c'),
            ("EVENTWATCH_REMINDERS__OFFSETS", "P1D"),
        ],
    )
    def test_broken_json_names_the_variable_only(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, name: str, value: str
    ) -> None:
        """The problem names the variable and what is wrong, but shows nothing of the value."""
        monkeypatch.setenv(name, value)
        site.write_config("[server]\nport = 0\n")
        found = problems_of(site.config)
        assert found[0].startswith(f"${name}: not valid JSON (")
        assert found[1:] == [  # the file is still checked, and blamed for its own mistake only
            "config/eventwatch.toml:4: server.port: Input should be greater than or equal to 1"
        ]
        assert self.CANARY not in "\n".join(found)

    def test_variable_below_a_plain_setting_is_one_problem(
        self, site: Site, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """EVENTWATCH_SMTP__PASSWORD__X names no setting, and no file line is blamed for it."""
        monkeypatch.setenv("EVENTWATCH_SMTP__PASSWORD__X", self.CANARY)
        assert problems_of(site.config) == ["$EVENTWATCH_SMTP__PASSWORD__X: names no setting"]

    def test_anything_else_pydantic_settings_refuses_is_a_problem(
        self, site: Site, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Should a variable slip past the check for JSON, its refusal is still a problem."""
        monkeypatch.setattr(settings, "_is_json", lambda _annotation: False)
        monkeypatch.setenv("EVENTWATCH_SMTP", self.CANARY)
        (message,) = problems_of(site.config)
        assert message.startswith("$EVENTWATCH_*: cannot be read: error parsing value")
        assert self.CANARY not in message


# What [database] url is told: another database or none at all, and a PostgreSQL URL that
# cannot be used (UNUSABLE, the reason, then FORM).
NOT_POSTGRES = (
    "is not a PostgreSQL URL: write postgresql+psycopg://user@host:5432/database, "
    "or leave it unset for the SQLite file in state_dir"
)
UNUSABLE = "is not a usable PostgreSQL URL: "
FORM = "; write postgresql+psycopg://user@host:5432/database"


class TestDatabase:
    """[database]: the SQLite file by default, a PostgreSQL URL whose password never shows."""

    SECRET = "hunter2-correct-horse"  # noqa: S105 - a test value
    URL = "postgresql+psycopg://eventwatch@db.example.org:5432/eventwatch"
    WITH_PASSWORD = "postgresql+psycopg://eventwatch:hunter2-correct-horse@db.example.org/ev"  # noqa: S105

    def load(self, site: Site, section: str) -> settings.DatabaseSettings:
        """The [database] section loaded from ``section``'s lines."""
        site.write_config(f"[database]\n{section}\n")
        return settings.load(site.config).database

    def test_defaults(self, site: Site) -> None:
        """Without [database], the ledger is the SQLite file, claims last PT2M, nothing is named."""
        loaded = settings.load(site.config).database
        assert (loaded.url, loaded.shown_url, loaded.postgres) == (None, None, False)
        assert (loaded.password, loaded.password_file, loaded.instance) == (None, None, None)
        assert loaded.claim_lease == timedelta(minutes=2)

    @pytest.mark.parametrize(
        "url",
        [
            URL,
            "postgresql+psycopg://db.example.org/eventwatch",
            "postgresql+psycopg://eventwatch:pa%40ss%2F%3F%23@db.example.org:6432/eventwatch",
            "postgresql+psycopg://eventwatch@[2001:db8::1]:5432/eventwatch",
            "postgresql+psycopg://eventwatch@db.example.org/eventwatch?sslmode=verify-full",
        ],
    )
    def test_postgresql_url_is_accepted(self, site: Site, url: str) -> None:
        """A psycopg URL with a host and a database is kept as written; SQLAlchemy agrees."""
        loaded = self.load(site, f'url = "{url}"')
        assert (loaded.url, loaded.postgres) == (url, True)
        assert loaded.shown_url == sa.make_url(url).render_as_string(hide_password=True)

    @pytest.mark.parametrize("scheme", ["postgresql", "postgres", "PostgreSQL"])
    def test_plain_scheme_is_read_as_psycopg(self, site: Site, scheme: str) -> None:
        """postgresql:// and postgres:// become postgresql+psycopg://, the rest unchanged."""
        loaded = self.load(site, f'url = "{scheme}://eventwatch@db.example.org:5432/eventwatch"')
        assert loaded.url == self.URL

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            ("mysql://x", f"'mysql://x' {NOT_POSTGRES}"),
            ("sqlite:///state/eventwatch.db", f"'sqlite:///state/eventwatch.db' {NOT_POSTGRES}"),
            ("garbage", f"'garbage' {NOT_POSTGRES}"),
            (
                "/var/lib/eventwatch/eventwatch.db",
                f"'/var/lib/eventwatch/eventwatch.db' {NOT_POSTGRES}",
            ),
            ("postgresql:/db.example.org/ev", f"'postgresql:/db.example.org/ev' {NOT_POSTGRES}"),
            (
                "postgresql+psycopg2://u@h/ev",
                (
                    "'postgresql+psycopg2://u@h/ev' names a driver other than psycopg 3: "
                    "write postgresql+psycopg://user@host:5432/database"
                ),
            ),
            (
                "postgresql://u@/ev",
                f"'postgresql://u@/ev' {UNUSABLE}it names no host{FORM}",
            ),
            (
                "postgresql://u@h",
                f"'postgresql://u@h' {UNUSABLE}it names no database{FORM}",
            ),
            (
                "postgresql://u@h/",
                f"'postgresql://u@h/' {UNUSABLE}it names no database{FORM}",
            ),
            *[
                (
                    f"postgresql://u@{where}/ev",
                    (
                        f"'postgresql://u@{where}/ev' {UNUSABLE}its host or port cannot be read "
                        f"(an IPv6 address goes in [ ], a port is 1 to 65535){FORM}"
                    ),
                )
                for where in ["h:0", "h:65536", "h:5432x", "[::1"]
            ],
            *[
                (
                    f"postgresql://u:p{raw}x@h/ev",
                    (
                        f"'postgresql://u:***@h/ev' {UNUSABLE}it reads more than one way "
                        f"(a password's @ / ? # are written %40 %2F %3F %23){FORM}"
                    ),
                )
                for raw in "@/?#"
            ],
            *[
                (
                    f"postgresql://u@h/ev?{query}",
                    (
                        f"'postgresql://u@h/ev?***' {UNUSABLE}a password in its query would "
                        f"show wherever the URL is printed: use password_file{FORM}"
                    ),
                )
                # However written: a key, an encoded key, inside another value, any case.
                for query in (
                    "password=x",
                    "pass%77ord=x",
                    "sslmode=disable;password=x",
                    "sslmode=require&PassWord=x",
                )
            ],
            (
                "postgresql://u@h/e v",
                (
                    f"'postgresql://u@h/e v' {UNUSABLE}it holds a space or a control character "
                    f"(a space is written %20){FORM}"
                ),
            ),
        ],
    )
    def test_anything_else_is_refused(self, site: Site, url: str, message: str) -> None:
        """Another database, another driver or a URL short of a host or database is refused."""
        site.write_config(f"[database]\nurl = {json.dumps(url)}\n")
        assert problems_of(site.config) == [f"config/eventwatch.toml:4: database.url: {message}"]

    def test_overlong_url_is_refused_unshown(self, site: Site) -> None:
        """A URL of more than 1,000 characters is refused without being repeated."""
        (message,) = problems_of(site.config, [f'database.url="postgresql://h/{"e" * 1000}"'])
        assert message == (
            "--set: database.url: 1,015 characters is too long (at most 1,000 are allowed here)"
        )

    @SHARED_SITE
    @given(
        before=st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0")),
        after=st.text(st.sampled_from("@/?#:%&= aZ")),
        scheme=st.sampled_from(["postgresql+psycopg", "postgres", "mysql", "sqlite"]),
        encoded=st.booleans(),
    )
    @hypothesis.example(before="", after="@x", scheme="postgres", encoded=False)
    @hypothesis.example(before="a/b", after="", scheme="postgres", encoded=False)
    def test_url_password_never_shows(
        self, site: Site, before: str, after: str, scheme: str, *, encoded: bool
    ) -> None:
        """Whatever a URL's password holds, raw or encoded, no message or shown_url has it."""
        password = before + CANARY + after
        written = quote(password, safe="") if encoded else password
        url = f"{scheme}://eventwatch:{written}@db.example.org:5432/eventwatch"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("EVENTWATCH_DATABASE__URL", url)
            shown = errors_of(lambda: settings.load(site.config))
            if shown:
                assert shown.startswith("$EVENTWATCH_DATABASE__URL: database.url: ")
                assert CANARY not in shown
                return
            loaded = settings.load(site.config).database
        assert (
            loaded.shown_url == "postgresql+psycopg://eventwatch:***@db.example.org:5432/eventwatch"
        )
        assert CANARY not in repr(loaded)
        assert loaded.url is not None
        read = sa.make_url(loaded.url)  # the reader that opens it sees the same password
        assert (read.host, read.port, read.database) == ("db.example.org", 5432, "eventwatch")
        assert read.password == unquote(written)

    def test_url_is_left_out_of_repr(self, site: Site) -> None:
        """Printing the settings does not show the URL, which may hold a password."""
        loaded = settings.load(site.config, [f"database.url={self.WITH_PASSWORD}"])
        assert self.SECRET not in repr(loaded)
        assert loaded.database.shown_url == "postgresql+psycopg://eventwatch:***@db.example.org/ev"

    def test_password_and_file_together_are_refused(self, site: Site) -> None:
        """Two sources for one password is ambiguous, as for SMTP."""
        (site.config.parent / "pw").write_text("x")
        site.write_config('[database]\npassword = "a"\npassword_file = "pw"\n')
        assert problems_of(site.config) == [
            (
                "config/eventwatch.toml:5: database.password_file: "
                "set password or password_file, not both"
            )
        ]

    def test_password_file_is_read_relative_to_the_config(self, site: Site) -> None:
        """password_file is read once, its trailing newline dropped."""
        (site.config.parent / "database-password").write_text(self.SECRET + "\n")
        loaded = self.load(site, f'url = "{self.URL}"\npassword_file = "database-password"')
        assert loaded.password is not None
        assert loaded.password.get_secret_value() == self.SECRET

    def test_systemd_credential_is_the_password(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """$CREDENTIALS_DIRECTORY/database-password is read when no password is set."""
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "database-password").write_text(self.SECRET + "\n")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        loaded = self.load(site, f'url = "{self.URL}"')
        assert loaded.password is not None
        assert loaded.password.get_secret_value() == self.SECRET
        assert settings.DatabaseSettings().password is None  # the shared default is untouched

    def test_a_set_password_beats_the_credential(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """An explicit password wins; the credential is for when the settings say none."""
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "database-password").write_text("from-systemd")
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        loaded = self.load(site, f'url = "{self.URL}"\npassword = "{self.SECRET}"')
        assert loaded.password is not None
        assert loaded.password.get_secret_value() == self.SECRET

    def test_the_credential_without_a_url_is_refused(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The database-password credential with no url means a url forgotten, as above."""
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "database-password").write_text(self.SECRET)
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        site.write_config("")
        (problem,) = problems_of(site.config)
        assert problem.endswith(
            "database.url: is not set, but $CREDENTIALS_DIRECTORY/database-password is: "
            "set url to the PostgreSQL server"
        )
        assert self.SECRET not in problem

    @pytest.mark.parametrize("key", ["password", "password_file"])
    def test_a_password_without_a_url_is_refused(self, site: Site, key: str) -> None:
        """A password with no url means a url forgotten: every instance would send alone."""
        (site.config.parent / "pw").write_text("x")
        site.write_config(f'[database]\n{key} = "pw"\n')
        assert problems_of(site.config) == [
            (
                f"config/eventwatch.toml:4: database.{key}: "
                "is set but url is not: set url to the PostgreSQL server it is for"
            )
        ]

    @pytest.mark.parametrize("key", ["password", "password_file"])
    def test_password_in_url_and_setting_is_refused(self, site: Site, key: str) -> None:
        """A password in the URL and in password or password_file is given twice."""
        (site.config.parent / "pw").write_text("x")
        site.write_config(f'[database]\nurl = "{self.WITH_PASSWORD}"\n{key} = "pw"\n')
        assert problems_of(site.config) == [
            (
                f"config/eventwatch.toml:5: database.{key}: the url holds a password too: "
                f"give the password once, in {key} or the url"
            )
        ]

    def test_password_in_url_and_credential_is_refused(
        self, site: Site, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A password in the URL and in the systemd credential is given twice."""
        (tmp_path / "creds").mkdir()
        (tmp_path / "creds" / "database-password").write_text(self.SECRET)
        monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
        site.write_config(f'[database]\nurl = "{self.WITH_PASSWORD}"\n')
        assert problems_of(site.config) == [
            (
                "config/eventwatch.toml:4: database.url: holds a password, and so does "
                "$CREDENTIALS_DIRECTORY/database-password: give the password once"
            )
        ]

    @pytest.mark.parametrize(
        ("text", "lease"),
        [
            ("PT5S", timedelta(seconds=5)),
            ("PT30S", timedelta(seconds=30)),
            ("PT1H", timedelta(hours=1)),
        ],
    )
    def test_claim_lease_within_bounds(self, site: Site, text: str, lease: timedelta) -> None:
        """A claim lease from PT5S to PT1H, both ends included, is read as an ISO 8601 duration."""
        assert self.load(site, f'claim_lease = "{text}"').claim_lease == lease

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("PT4S", "must be at least PT5S (5 seconds)"),
            ("PT4.999S", "must be at least PT5S (5 seconds)"),
            ("-PT1M", "must be at least PT5S (5 seconds)"),
            ("PT1H0M1S", "must be at most PT1H (1 hour)"),
            ("P1D", "must be at most PT1H (1 hour)"),
        ],
    )
    def test_claim_lease_out_of_bounds(self, site: Site, text: str, message: str) -> None:
        """A claim lease under PT5S or over PT1H is refused, saying the bound."""
        site.write_config(f'[database]\nclaim_lease = "{text}"\n')
        assert problems_of(site.config) == [
            f"config/eventwatch.toml:4: database.claim_lease: {message}"
        ]

    @pytest.mark.parametrize("name", ["calendar1", "x", "eventwatch on db-1 (Brüssel)", "n" * 100])
    def test_instance_is_kept(self, site: Site, name: str) -> None:
        """A printable name of 1 to 100 characters is the instance's name."""
        loaded = self.load(site, f"instance = {json.dumps(name)}")
        assert loaded.instance == loaded.instance_name == name

    @pytest.mark.parametrize(
        ("name", "message"),
        [
            ("", "must not be empty or only spaces"),
            ("   ", "must not be empty or only spaces"),
            ("n" * 101, "101 characters is too long (at most 100 are allowed)"),
            (
                "node\t1",
                "character U+0009 is not allowed: printable ones only, no tabs or line breaks",
            ),
            (
                "node\n1",
                "character U+000A is not allowed: printable ones only, no tabs or line breaks",
            ),
            (
                "node\x1b[31m",
                "character U+001B is not allowed: printable ones only, no tabs or line breaks",
            ),
            (
                "node\u2028",
                "character U+2028 is not allowed: printable ones only, no tabs or line breaks",
            ),
        ],
    )
    def test_bad_instance_is_refused(self, site: Site, name: str, message: str) -> None:
        """An empty, blank, overlong or unprintable instance name is refused."""
        site.write_config(f"[database]\ninstance = {json.dumps(name)}\n")
        assert problems_of(site.config) == [
            f"config/eventwatch.toml:4: database.instance: {message}"
        ]

    def test_instance_name_defaults_to_host_and_pid(self, site: Site) -> None:
        """Unset, the instance's name is the host name and this process's id."""
        loaded = settings.load(site.config).database
        assert loaded.instance_name == f"{socket.gethostname()}-{os.getpid()}"
        assert loaded.instance_name.endswith(f"-{os.getpid()}")

    def test_environment_sets_the_section(
        self, site: Site, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """EVENTWATCH_DATABASE__* variables override the file, as for every section."""
        site.write_config('[database]\nclaim_lease = "PT1M"\ninstance = "from-file"\n')
        monkeypatch.setenv("EVENTWATCH_DATABASE__URL", "postgres://eventwatch@db.example.org/ev")
        monkeypatch.setenv("EVENTWATCH_DATABASE__CLAIM_LEASE", "PT30S")
        loaded = settings.load(site.config).database
        assert loaded.url == "postgresql+psycopg://eventwatch@db.example.org/ev"
        assert (loaded.claim_lease, loaded.instance) == (timedelta(seconds=30), "from-file")

    def test_bad_environment_url_names_the_variable(
        self, site: Site, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A refused URL from the environment is blamed on the variable, its password masked."""
        monkeypatch.setenv("EVENTWATCH_DATABASE__URL", f"mysql://u:{self.SECRET}@h/ev")
        assert problems_of(site.config) == [
            f"$EVENTWATCH_DATABASE__URL: database.url: 'mysql://u:***@h/ev' {NOT_POSTGRES}"
        ]
