"""Settings and calendars checked together, every problem in one pass."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from eventwatch import inputs
from eventwatch.errors import InvalidInputError

if TYPE_CHECKING:
    from .conftest import Site


def problems_of(site: Site) -> list[str]:
    """Every problem ``inputs.load`` reports for the site, as printed."""
    with pytest.raises(InvalidInputError) as exc:
        inputs.load(site.config)
    return [str(p) for p in exc.value.problems]


def test_valid_site_loads(site: Site) -> None:
    """Settings and the one calendar come back together."""
    loaded = inputs.load(site.config)
    assert loaded.settings.calendars_dir.resolve() == site.calendars.resolve()
    assert [c.id for c in loaded.calendars] == ["test"]


def test_bad_settings_do_not_hide_bad_calendars(site: Site) -> None:
    """A wrong port and a wrong calendar are both reported, settings first."""
    site.write_config("[server]\nport = -1\n")
    site.write_calendar("broken", 'name = "B"\ntimezone = "Nowhere/City"\n')
    assert problems_of(site) == [
        "config/eventwatch.toml:4: server.port: Input should be greater than or equal to 1",
        (
            "calendars/broken.toml:2: timezone: 'Nowhere/City' is not an IANA time zone "
            "(e.g. 'Europe/Brussels', 'UTC')"
        ),
    ]


def test_unknown_variable_does_not_hide_bad_calendars(
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stray EVENTWATCH_ variable and a broken calendar are both reported."""
    monkeypatch.setenv("EVENTWATCH_PORT", "1")
    site.write_calendar("broken", "name = \n")
    found = problems_of(site)
    assert found[0] == "$EVENTWATCH_PORT: names no setting"
    assert found[1].startswith("calendars/broken.toml:1: TOML syntax error")


def test_unusable_calendars_dir_stops_at_the_settings(site: Site) -> None:
    """When the calendars folder itself is invalid there is nothing more to check."""
    site.config.write_text("calendars_dir = 5\n")
    assert problems_of(site) == [
        "config/eventwatch.toml:1: calendars_dir: expected a path (a string)",
    ]
