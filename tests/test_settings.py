"""Settings: where they come from, which source wins, and that secrets stay secret."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pydantic import BaseModel

from eventwatch import settings
from eventwatch.errors import SettingsError
from eventwatch.settings import Settings

from .conftest import SHIPPED_CONFIG

if TYPE_CHECKING:
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

    @pytest.mark.parametrize("pair", ["server.port", "=1", "server..port=1"])
    def test_malformed_set_is_refused(self, site: Site, pair: str) -> None:
        """--set needs KEY=VALUE with a dotted key."""
        assert problems_of(site.config, [pair]) == [
            f"--set: {pair}: expected KEY=VALUE, e.g. server.port=9000",
        ]

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
