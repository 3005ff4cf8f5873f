"""The only Jinja2 import: the shipped templates (``templates/``), or a site's own first."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jinja2

if TYPE_CHECKING:
    from pathlib import Path


@functools.cache
def environment(override: Path | None = None) -> jinja2.Environment:
    """Templates from ``override`` first (a site's own), then the shipped ones.

    Every template is autoescaped, so every text from a calendar file is escaped, except
    plain-text ones (``.txt``, ``.txt.j2``), where escaping would show as ``&amp;`` in a mail
    client. Escaping is the default rather than chosen for ``.html`` names because a site's
    own ``reminder.html.j2`` may extend or include a template of any name (``layout.j2``),
    and each template is escaped by its own name.
    """
    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        loaders.append(jinja2.FileSystemLoader(override))
    loaders.append(jinja2.PackageLoader("eventwatch", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=(), disabled_extensions=("txt", "txt.j2"), default=True
        ),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, override: Path | None = None, **values: object) -> str:
    """Render template ``name`` with ``values``."""
    return environment(override).get_template(name).render(**values)
