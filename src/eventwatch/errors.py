"""The exceptions eventwatch raises, and the problems they report.

The tree::

    EventwatchError                 anything eventwatch reports to a person
    ├── InvalidInputError           exit 2: something a person wrote is wrong; carries problems
    │   ├── SettingsError           the settings file, the environment or --set
    │   └── CalendarError           one or more calendar files
    ├── StateError                  exit 2: the state folder or its database cannot be used as
    │                               it is (damaged, not ours, not writable); a person must look
    └── OperationError              exit 1: the input was fine, the work failed (I/O, servers)
        ├── DeliveryError           a message was not accepted (``permanent`` or not)
        └── MessageError            one reminder's message cannot be made; it fails alone

    InvalidField(ValueError)        raised inside record validators to point at a nested field;
                                    it never leaves validation (the readers turn it into a Problem)

Outside exceptions are wrapped where they enter (``raise CalendarError(...) from exc``); the
command line turns the tree into exit codes, so no traceback reaches a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input: where it is, which field, and what is wrong."""

    source: str
    field: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        """Render as ``SOURCE:LINE: field: message``, leaving out what is unknown."""
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class EventwatchError(Exception):
    """Base of every error eventwatch reports to a person."""

    exit_code = 1


class InvalidInputError(EventwatchError):
    """Something a person wrote is wrong; holds every problem found, not only the first."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        """Keep the problems; the message is all of them, one a line."""
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class SettingsError(InvalidInputError):
    """The settings file, an ``EVENTWATCH_*`` variable or a ``--set`` override is invalid.

    ``calendars_dir`` is the calendars folder when the settings name a valid one despite their
    other problems, so that the calendars can still be checked in the same pass.
    """

    def __init__(
        self,
        problems: list[Problem] | tuple[Problem, ...],
        calendars_dir: Path | None = None,
    ) -> None:
        """Keep the problems and, if known, the calendars folder."""
        super().__init__(problems)
        self.calendars_dir = calendars_dir


class CalendarError(InvalidInputError):
    """One or more calendar files are invalid."""


class StateError(EventwatchError):
    """The state folder or its database cannot be used as it is; restarting will not help.

    Exit 2, as for invalid input, so that systemd does not restart into the same failure; the
    message names the file and what to do. The ledger is never replaced without the admin.
    """

    exit_code = 2


class OperationError(EventwatchError):
    """The input was valid but the work could not be done (a file system or server failure)."""


class InvalidField(ValueError):  # noqa: N818 - pydantic only converts ValueError subclasses
    """A validator's complaint about a field below the one it validates.

    ``loc`` is relative to the record whose validator raised it, so a calendar can point at
    ``events[3].id`` rather than at itself.
    """

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        """Remember where, below the validated record, the problem is."""
        super().__init__(message)
        self.loc = loc


class MessageError(OperationError):
    """One message cannot be made safely from its text; that reminder fails, no other does."""


class DeliveryError(OperationError):
    """A message was not accepted; ``permanent`` says whether trying again could help.

    ``reason`` names the kind of failure for metrics: ``rejected`` (a 5xx reply),
    ``deferred`` (a 4xx reply), ``connection`` (refused, reset, timed out), ``tls``
    (hand-shake or certificate), ``maildir`` (the folder could not be written).
    """

    def __init__(self, reply: str, *, permanent: bool, reason: str = "") -> None:
        """Keep the server's reply (never a password) and whether to retry."""
        super().__init__(reply)
        self.reply = reply
        self.permanent = permanent
        self.reason = reason or ("rejected" if permanent else "deferred")
