"""The only Jinja2 import: the shipped templates, optionally overridden from a folder."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import jinja2

if TYPE_CHECKING:
    from pathlib import Path


@functools.cache
def environment(override: Path | None = None) -> jinja2.Environment:
    """Templates from ``override`` first (a site's own), then the shipped ones.

    HTML templates are autoescaped, so every text from a calendar file is escaped there;
    plain-text templates are not (escaping would show as ``&amp;`` in a mail client).
    """
    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        loaders.append(jinja2.FileSystemLoader(override))
    loaders.append(jinja2.PackageLoader("eventwatch", "templates"))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, override: Path | None = None, **values: object) -> str:
    """Render template ``name`` with ``values``."""
    return environment(override).get_template(name).render(**values)
