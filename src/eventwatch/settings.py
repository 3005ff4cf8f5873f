"""The settings: a TOML file, overridden by ``EVENTWATCH_*`` variables, overridden by ``--set``."""

from __future__ import annotations

import contextlib
import contextvars
import email.headerregistry
import email.utils
import json
import os
import re
import socket
import tomllib
import types
import typing
from datetime import time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, Self
from urllib.parse import unquote, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings import SettingsError as SourceError

from eventwatch import problems, tomlfile
from eventwatch.errors import InvalidField, InvalidInputError, Problem, SettingsError
from eventwatch.models import EmailAddress, Offset, ReminderPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX = "EVENTWATCH_"
CONFIG_VARIABLE = "EVENTWATCH_CONFIG"
SEARCH_PATH = (Path("config/eventwatch.toml"), Path("/etc/eventwatch/eventwatch.toml"))

# Loading is one synchronous call; these carry its inputs into pydantic-settings' hooks, which
# are class methods and validators with no other way to receive them.
_FILE_DATA: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("file_data")
_BASE_DIR: contextvars.ContextVar[Path] = contextvars.ContextVar("base_dir")
_LEFT_OUT: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("left_out")


def _against_config_folder(path: Path) -> Path:
    """Resolve a relative path against the config file's folder, whatever set it."""
    return path if path.is_absolute() else (_BASE_DIR.get(Path.cwd()) / path)


ConfigPath = Annotated[Path, AfterValidator(_against_config_folder)]
"""A path; relative ones are read from the config file's folder, so a copied folder works."""

_EMAIL = TypeAdapter(EmailAddress)
_HEADERS = email.headerregistry.HeaderRegistry()


def _sender(value: str) -> str:
    """One address, optionally with a name: ``eventwatch <eventwatch@example.org>``."""
    header = _HEADERS("From", value)
    addresses = header.addresses  # type: ignore[attr-defined]
    if header.defects or len(addresses) != 1 or not addresses[0].addr_spec.strip("@"):
        msg = "expected one address like 'eventwatch <eventwatch@example.org>'"
        raise ValueError(msg)
    try:
        address = _EMAIL.validate_python(addresses[0].addr_spec)
    except ValidationError as exc:
        raise ValueError(exc.errors()[0]["ctx"]["error"]) from None
    return email.utils.formataddr((addresses[0].display_name, address))


class Section(BaseModel):
    """Base of a settings section: immutable, unknown keys refused, input kept out of errors."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        hide_input_in_errors=True,
        validate_default=True,
    )


class ServerSettings(Section):
    """Where the HTTP server listens and the address subscribers reach it at."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    public_url: HttpUrl | None = None

    @property
    def base_url(self) -> str:
        """The address feeds are published under, ending in a slash."""
        if self.public_url is not None:
            text = str(self.public_url)
            return text if text.endswith("/") else text + "/"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


class FeedSettings(Section):
    """How feeds are published and how often calendar files are looked at."""

    refresh_interval: timedelta = Field(default=timedelta(hours=1), gt=timedelta(0))
    alarms: bool = False
    reload_every: timedelta = Field(default=timedelta(seconds=30), gt=timedelta(0))
    max_age: int = Field(default=300, ge=0)
    gzip: bool = True


class MailSettings(Section):
    """How reminders leave: written to a Maildir or sent through an SMTP server."""

    delivery: Literal["maildir", "smtp"] = "maildir"
    sender: Annotated[str, AfterValidator(_sender)] | None = Field(default=None, alias="from")
    templates_dir: ConfigPath | None = None

    @property
    def from_address(self) -> str:
        """The From: of reminders; a local placeholder when unset (Maildir only)."""
        return self.sender or "eventwatch <eventwatch@localhost>"

    model_config = ConfigDict(populate_by_name=True)


class SmtpSettings(Section):
    """The SMTP server reminders are sent through when ``[mail] delivery = "smtp"``."""

    host: str = "localhost"
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    password_file: ConfigPath | None = None
    ca_file: ConfigPath | None = None
    timeout: float = Field(default=30.0, gt=0)
    max_connections: int = Field(default=4, ge=1, le=64)

    @model_validator(mode="after")
    def _read_password_file(self) -> Self:
        _password_from_file(self)
        return self

    @property
    def effective_port(self) -> int:
        """The port to connect to: the setting, else the standard one for the security mode."""
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class _Secured(Protocol):
    """A section with a password, given as such or as a file to read."""

    @property
    def password(self) -> SecretStr | None:
        """The password, if given or read."""

    @property
    def password_file(self) -> Path | None:
        """The file to read it from, if given."""


def _one_password(section: _Secured) -> None:
    """Refuse a section given both ``password`` and ``password_file``."""
    if section.password_file is not None and section.password is not None:
        raise InvalidField(("password_file",), "set password or password_file, not both")


def _password_from_file(section: _Secured) -> None:
    """Read ``password_file`` into ``password``: the section's own validator completing it.

    The section is frozen for everyone else.
    """
    _one_password(section)
    if section.password_file is None:
        return
    secret = _read_secret(section.password_file, ("password_file",), "the password file")
    object.__setattr__(section, "password", SecretStr(secret))


def _credential(name: str) -> Path | None:
    """The systemd credential ``name`` (``$CREDENTIALS_DIRECTORY/NAME``), if there is one."""
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if not folder:
        return None
    path = Path(folder) / name
    return path if path.exists() else None


def _read_secret(path: Path, loc: tuple[str, ...], named: str) -> str:
    """The secret in ``path``, without its final line break; a one-line error if unreadable.

    Read as the settings file is, so that a FIFO or a device named here cannot hang or fill
    memory. The error calls the file ``named`` and says why, but shows neither its path (a
    password given as ``password_file`` by mistake would show) nor what it holds.
    """
    try:
        return tomlfile.read_bytes(path).decode("utf-8").rstrip("\r\n")
    except OSError as exc:
        reason = exc.strerror
    except UnicodeDecodeError as exc:  # its reason only: the byte and its place are the secret's
        reason = f"not UTF-8 text: {exc.reason}"
    raise InvalidField(loc, f"cannot read {named}: {reason}")


URL_AT_MOST = 1_000
"""Characters in ``[database] url``: room for any real server and options, never a page."""

_POSTGRES_SCHEMES = frozenset({"postgresql+psycopg", "postgresql", "postgres"})
_URL_FORM = "postgresql+psycopg://user@host:5432/database"
_QUERY_PASSWORD = re.compile(r"(password=)[^&]*", re.IGNORECASE)


def masked_url(text: str) -> str:
    """``text`` with whatever could be a URL's password replaced by ``***``.

    The password is taken to run from the first ``:`` after ``scheme://`` to the last ``@``:
    wider than any parser reads it, so that no part of a password written without
    percent-encoding (``p@ss/w#rd``) shows, not even in the message refusing it.
    """
    head, sep, rest = text.partition("://")
    at = rest.rfind("@")
    user, colon, _ = rest[: max(at, 0)].partition(":")
    if at >= 0 and colon:
        rest = f"{user}:***{rest[at:]}"
    path, mark, query = rest.partition("?")
    if "password" in unquote(query).lower():  # however written: pass%77ord, a;password=
        return f"{head}{sep}{path}{mark}***"
    return _QUERY_PASSWORD.sub(r"\1***", head + sep + rest)


def _unusable_url(url: str) -> str | None:
    """Why the ``postgresql+psycopg://`` URL ``url`` cannot be used, if it cannot.

    Accepted URLs are read the same way by ``urllib.parse`` and by SQLAlchemy, which opens
    them; where the two would differ (a raw ``@ / ? #`` in a password), the URL is refused,
    lest the server get one password and the masking hide another.
    """
    if any(not c.isprintable() or c.isspace() for c in url):
        return "it holds a space or a control character (a space is written %20)"
    rest = url.partition("://")[2]
    before_at = rest.partition("@")[0] if "@" in rest else ""
    if "#" in rest or rest.count("@") > 1 or "/" in before_at or "?" in before_at:
        return "it reads more than one way (a password's @ / ? # are written %40 %2F %3F %23)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        return "its host or port cannot be read (an IPv6 address goes in [ ], a port is 1 to 65535)"
    checks = (
        (not parts.hostname, "it names no host"),
        (not parts.path.removeprefix("/"), "it names no database"),
        (
            "password" in unquote(parts.query).lower(),
            "a password in its query would show wherever the URL is printed: use password_file",
        ),
    )
    return next((reason for failed, reason in checks if failed), None)


def _postgres_url(value: str) -> str:
    """A PostgreSQL URL for psycopg 3, its scheme written ``postgresql+psycopg``."""
    if len(value) > URL_AT_MOST:
        msg = f"{len(value):,} characters is too long (at most {URL_AT_MOST:,} are allowed here)"
        raise ValueError(msg)
    scheme, sep, rest = value.partition("://")
    shown = masked_url(value)
    if sep and scheme.lower().startswith("postgres") and scheme.lower() not in _POSTGRES_SCHEMES:
        msg = f"{shown!r} names a driver other than psycopg 3: write {_URL_FORM}"
        raise ValueError(msg)
    if not sep or scheme.lower() not in _POSTGRES_SCHEMES:
        msg = (
            f"{shown!r} is not a PostgreSQL URL: write {_URL_FORM}, "
            "or leave it unset for the SQLite file in state_dir"
        )
        raise ValueError(msg)
    url = f"postgresql+psycopg://{rest}"
    reason = _unusable_url(url)
    if reason is not None:
        msg = f"{shown!r} is not a usable PostgreSQL URL: {reason}; write {_URL_FORM}"
        raise ValueError(msg)
    return url


CLAIM_LEASE_AT_LEAST = timedelta(seconds=5)
CLAIM_LEASE_AT_MOST = timedelta(hours=1)


def _claim_lease(value: timedelta) -> timedelta:
    """A lease within its bounds."""
    if value < CLAIM_LEASE_AT_LEAST:
        raise ValueError("must be at least PT5S (5 seconds)")
    if value > CLAIM_LEASE_AT_MOST:
        raise ValueError("must be at most PT1H (1 hour)")
    return value


INSTANCE_AT_MOST = 100


def _instance(value: str) -> str:
    """A name for this process in the shared ledger: one printable line, not blank."""
    if not value.strip():
        raise ValueError("must not be empty or only spaces")
    if len(value) > INSTANCE_AT_MOST:
        msg = f"{len(value):,} characters is too long (at most {INSTANCE_AT_MOST} are allowed)"
        raise ValueError(msg)
    for char in value:
        if not char.isprintable():
            code = f"U+{ord(char):04X}"
            msg = f"character {code} is not allowed: printable ones only, no tabs or line breaks"
            raise ValueError(msg)
    return value


class DatabaseSettings(Section):
    """Where the ledger lives: the SQLite file in ``state_dir``, or a PostgreSQL server."""

    # Out of repr: the URL may hold a password; ``shown_url`` is the printable form.
    url: Annotated[str, AfterValidator(_postgres_url)] | None = Field(default=None, repr=False)
    password: SecretStr | None = None
    password_file: ConfigPath | None = None
    claim_lease: Annotated[timedelta, AfterValidator(_claim_lease)] = timedelta(minutes=2)
    instance: Annotated[str, AfterValidator(_instance)] | None = None

    @model_validator(mode="after")
    def _read_password_file(self) -> Self:
        _one_password(self)
        given = "password_file" if self.password_file is not None else "password"
        if self.url is None and getattr(self, given) is not None:
            # Likely a url forgotten or misspelt: each instance would keep a SQLite ledger
            # of its own, and all of them would send every reminder.
            message = "is set but url is not: set url to the PostgreSQL server it is for"
            raise InvalidField((given,), message)
        if getattr(self, given) is not None and self.url_has_password:
            message = f"the url holds a password too: give the password once, in {given} or the url"
            raise InvalidField((given,), message)
        _password_from_file(self)
        return self

    @property
    def postgres(self) -> bool:
        """Whether the ledger is on PostgreSQL (a URL is set) rather than the SQLite file."""
        return self.url is not None

    @property
    def shown_url(self) -> str | None:
        """The URL with its password as ``***``, to print and log; None when unset."""
        return None if self.url is None else masked_url(self.url)

    @property
    def url_has_password(self) -> bool:
        """Whether the URL itself holds a password (``user:secret@host``)."""
        return self.url is not None and urlsplit(self.url).password is not None

    @property
    def instance_name(self) -> str:
        """This process's name in the ledger's claims: the setting, else ``HOST-PID``."""
        return self.instance or f"{socket.gethostname()}-{os.getpid()}"


class LogSettings(Section):
    """What the daemon writes to stderr (the journal, under systemd)."""

    level: Annotated[
        Literal["debug", "info", "warning", "error"],
        BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v),
    ] = "info"
    format: Literal["text", "json"] = "text"


class ReminderDefaults(ReminderPolicy):
    """The policy every calendar inherits where it sets nothing itself."""

    offsets: tuple[Offset, ...] | None = (Offset(days=1, seconds=0),)
    all_day_at: time | None = time(9, 0)
    catch_up: timedelta = Field(default=timedelta(hours=6), ge=timedelta(0))

    model_config = ConfigDict(hide_input_in_errors=True)


class _Sourced(BaseSettings):
    """Settings read from the command line, the environment and the file, in that precedence."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        hide_input_in_errors=True,
        validate_default=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Command line (``init``) over environment over the file; no dotenv, no secrets dir."""
        del env_settings, dotenv_settings, file_secret_settings
        return (init_settings, _Environment(settings_cls), _FileSource(settings_cls))


class _CalendarsDirOnly(_Sourced):
    """Just the calendars folder, so that ``check`` can read the calendars beside bad settings."""

    model_config = SettingsConfigDict(extra="ignore")

    calendars_dir: ConfigPath = Path("calendars")


class Settings(_Sourced):
    """Everything eventwatch is configured with."""

    calendars_dir: ConfigPath = Path("calendars")
    state_dir: ConfigPath = Path("state")
    server: ServerSettings = ServerSettings()
    feeds: FeedSettings = FeedSettings()
    mail: MailSettings = MailSettings()
    smtp: SmtpSettings = SmtpSettings()
    database: DatabaseSettings = DatabaseSettings()
    reminders: ReminderDefaults = ReminderDefaults()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _smtp_password_from_credential(self) -> Self:
        # Under systemd, LoadCredential=smtp-password:FILE puts the password here; read at
        # every load (not in SmtpSettings, whose default instance is made at import).
        credential = _credential("smtp-password")
        if credential is not None and self.smtp.password is None:
            named = "$CREDENTIALS_DIRECTORY/smtp-password"
            secret = SecretStr(_read_secret(credential, ("smtp", "password"), named))
            # Frozen for everyone else; this is its own validator completing it. A copy, as
            # the section may be the shared default instance.
            object.__setattr__(self, "smtp", self.smtp.model_copy(update={"password": secret}))
        return self

    @model_validator(mode="after")
    def _database_password_from_credential(self) -> Self:
        # As for smtp-password: LoadCredential=database-password:FILE, read at every load.
        credential = _credential("database-password")
        if credential is not None and self.database.password is None:
            named = "$CREDENTIALS_DIRECTORY/database-password"
            if self.database.url is None:
                # As for password: a url forgotten would leave this instance on a SQLite
                # ledger of its own, sending every reminder beside the others.
                message = f"is not set, but {named} is: set url to the PostgreSQL server"
                raise InvalidField(("database", "url"), message)
            if self.database.url_has_password:
                message = f"holds a password, and so does {named}: give the password once"
                raise InvalidField(("database", "url"), message)
            secret = SecretStr(_read_secret(credential, ("database", "password"), named))
            section = self.database.model_copy(update={"password": secret})
            # Frozen for everyone else; this is its own validator completing it, with a copy.
            object.__setattr__(self, "database", section)
        return self

    @model_validator(mode="after")
    def _smtp_needs_sender(self) -> Self:
        if self.mail.delivery == "smtp" and self.mail.sender is None:
            raise InvalidField(("mail", "from"), 'required when delivery = "smtp"')
        return self


class _Environment(EnvSettingsSource):
    """The ``EVENTWATCH_*`` variables, less those already reported as unusable.

    pydantic-settings would stop at the first one that is not JSON where JSON is needed, with
    a traceback; left out here, each is one problem and the rest are still checked.
    """

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        """Read the environment as pydantic-settings does, then leave out the refused names."""
        super().__init__(settings_cls)
        left_out = {name.lower() for name in _LEFT_OUT.get(frozenset())}
        self.env_vars = {k: v for k, v in self.env_vars.items() if k.lower() not in left_out}


class _FileSource(PydanticBaseSettingsSource):
    """The parsed settings file, the lowest-precedence source."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # noqa: ANN401
        """Unused: ``__call__`` hands over the whole file at once."""
        del field
        return _FILE_DATA.get({}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        """The file's data."""
        return dict(_FILE_DATA.get({}))


def find_config(explicit: Path | None, environ: Mapping[str, str]) -> Path:
    """The settings file to read: ``--config``, else ``$EVENTWATCH_CONFIG``, else the search path.

    A file named by ``--config`` or the variable must exist; it is never silently replaced.
    """
    if explicit is not None:
        named, how = explicit, "--config"
    elif environ.get(CONFIG_VARIABLE):
        named, how = Path(environ[CONFIG_VARIABLE]), f"${CONFIG_VARIABLE}"
    else:
        for candidate in SEARCH_PATH:
            # Anything there by that name is taken, to be refused by the reader if it is no
            # regular file, rather than silently passed over for the next place.
            if os.path.lexists(candidate):
                return candidate
        tried = ", ".join(str(p) for p in SEARCH_PATH)
        message = f"no settings file: give --config PATH or set {CONFIG_VARIABLE} (tried {tried})"
        raise SettingsError([Problem("eventwatch", "", message)])
    if not os.path.lexists(named):  # a folder or a FIFO there is for the reader to refuse
        problem = Problem(
            tomlfile.display(named), "", f"settings file given by {how} does not exist"
        )
        raise SettingsError([problem])
    return named


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """Turn ``--set section.key=value`` pairs into nested data; values are TOML where they parse."""
    nested: dict[str, Any] = {}
    found: list[Problem] = []
    for number, pair in enumerate(pairs, start=1):
        key, sep, raw = pair.partition("=")
        parts = [p.strip() for p in key.split(".")]
        # The value may be a password: a message shows the key at most, never what follows it.
        if not sep:
            message = f"expected KEY=VALUE, e.g. server.port=9000 (--set number {number})"
            found.append(Problem("--set", "", message))
            continue
        if not all(parts):
            shown = tomlfile.printable(key)
            found.append(Problem("--set", shown, "expected KEY=VALUE, e.g. server.port=9000"))
            continue
        deep = tomlfile.too_deep_line(raw) is not None  # tomllib would recurse or crawl on it
        value: Any = raw
        if not deep:
            with contextlib.suppress(tomllib.TOMLDecodeError):
                value = tomllib.loads(f"v = {raw}")["v"]
        single = value
        for part in reversed(parts):
            single = {part: single}
        if deep or tomlfile.too_deep(single):
            found.append(Problem("--set", tomlfile.printable(parts[0]), tomlfile.TOO_DEEP))
            continue
        target = nested
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                shown = tomlfile.printable(key)
                found.append(Problem("--set", shown, "sets both a section and a value inside it"))
                break
        else:
            target[parts[-1]] = value
    if found:
        raise SettingsError(found)
    return nested


def _is_json(annotation: Any) -> bool:  # noqa: ANN401 - any annotation
    """Whether a variable for this type is JSON to pydantic-settings: a table or a list."""
    if isinstance(annotation, type):
        return issubclass(annotation, BaseModel | list | tuple | dict | set | frozenset)
    origin = typing.get_origin(annotation)
    if origin in {list, tuple, dict, set, frozenset}:
        return True
    if origin in {typing.Union, types.UnionType, typing.Annotated}:
        return any(_is_json(arg) for arg in typing.get_args(annotation))
    return False


def _unusable(name: str, value: str) -> str | None:
    """Why the variable ``name`` cannot be used, if it cannot; never showing its value."""
    loc = tuple(name[len(ENV_PREFIX) :].lower().split("__"))
    if loc[-1] not in problems.allowed_keys(Settings, loc[:-1]):
        return "names no setting"
    if not _is_json(problems.annotation_at(Settings, loc)):
        return None
    try:
        data: object = json.loads(value)
    except json.JSONDecodeError as exc:  # its message and place only: the value may be secret
        return (
            f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno}); "
            'tables and lists are written in JSON here, e.g. {"host": "mail.example.org"}'
        )
    except RecursionError:
        return "nested too deeply to read"
    for part in reversed(loc):  # its depth counts from the top of the settings
        data = {part: data}
    return tomlfile.TOO_DEEP if tomlfile.too_deep(data) else None


def _unusable_variables(environ: Mapping[str, str]) -> dict[str, Problem]:
    """``EVENTWATCH_*`` variables that cannot be used, each with its problem.

    Names of no setting (a typo must not pass silently) and tables or lists that are not JSON;
    each is reported, then left out of the environment the settings are read from.
    """
    found = {}
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX) or name.upper() == CONFIG_VARIABLE:
            continue
        reason = _unusable(name, environ[name])
        if reason is not None:
            found[name] = Problem(f"${name}", "", reason)
    return found


def load(config: Path | None = None, overrides: list[str] | None = None) -> Settings:
    """Find, read and validate the settings; raises ``SettingsError`` with every problem found.

    Reads ``os.environ``, as pydantic-settings does: this is where the environment enters.
    """
    environ = os.environ
    path = find_config(config, environ)
    try:
        doc = tomlfile.read(path)
    except InvalidInputError as exc:
        raise SettingsError(exc.problems) from exc
    given = parse_overrides(overrides or [])
    unusable = _unusable_variables(environ)
    found = list(unusable.values())

    environ_upper = {name.upper() for name in environ if name not in unusable}

    def where(loc: problems.Loc) -> tuple[str, int | None]:
        for end in range(len(loc), 0, -1):
            names = [str(p) for p in loc[:end] if isinstance(p, str)]
            if len(names) == end and ENV_PREFIX + "__".join(names).upper() in environ_upper:
                return f"${ENV_PREFIX}{'__'.join(names).upper()}", None
            value: Any = given
            for part in loc[:end]:
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None:
                return "--set", None
        return doc.name, doc.line_of(loc)

    data_token = _FILE_DATA.set(doc.data)
    base_token = _BASE_DIR.set(path.resolve().parent)
    left_out_token = _LEFT_OUT.set(frozenset(unusable))
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        found.extend(problems.problems(exc, Settings, where, show_input=False))
        raise SettingsError(found, calendars_dir=_calendars_dir_alone(given)) from None
    except SourceError as exc:  # a variable pydantic-settings refuses that we did not foresee
        found.append(Problem(f"${ENV_PREFIX}*", "", f"cannot be read: {exc}"))
        raise SettingsError(found, calendars_dir=_calendars_dir_alone(given)) from None
    finally:
        _FILE_DATA.reset(data_token)
        _BASE_DIR.reset(base_token)
        _LEFT_OUT.reset(left_out_token)
    if found:
        raise SettingsError(found, calendars_dir=settings.calendars_dir)
    return settings


def _calendars_dir_alone(given: dict[str, Any]) -> Path | None:
    """The calendars folder the settings name, if that much of them is valid."""
    try:
        return _CalendarsDirOnly(**given).calendars_dir
    except (ValidationError, SourceError):
        return None
