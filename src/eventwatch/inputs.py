"""Everything a person wrote, loaded together: the settings and the calendars."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from eventwatch import calendars, settings
from eventwatch.errors import CalendarError, InvalidInputError, Problem, SettingsError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from eventwatch.models import Calendar


@dataclass(frozen=True, slots=True)
class Inputs:
    """Valid settings and the calendars they point at."""

    settings: settings.Settings
    calendars: tuple[Calendar, ...]
    config_file: Path
    digests: Mapping[str, str] = field(default_factory=dict)
    """The SHA-256 of each calendar's file, by calendar id."""


def load(
    config: Path | None = None,
    overrides: list[str] | None = None,
    known: calendars.Known | None = None,
) -> Inputs:
    """Read and validate settings and calendars; raises ``InvalidInputError`` with every problem.

    Settings problems do not hide calendar problems: while the settings still name a valid
    calendars folder, its files are checked in the same pass. Calendar files ``known`` holds
    unchanged are not read again (see ``calendars.read``).
    """
    found: list[Problem] = []
    loaded: settings.Settings | None = None
    config_file = settings.find_config(config, os.environ)
    try:
        loaded = settings.load(config_file, overrides)
        folder: Path | None = loaded.calendars_dir
    except SettingsError as exc:
        found.extend(exc.problems)
        folder = exc.calendars_dir
    if folder is None:
        raise InvalidInputError(found)
    try:
        read, digests = calendars.read(folder, known)
    except CalendarError as exc:
        found.extend(exc.problems)
    if found or loaded is None:
        raise InvalidInputError(found)
    return Inputs(loaded, read, config_file, digests)
