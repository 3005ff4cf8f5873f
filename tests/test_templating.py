"""The templates: a site's own before the shipped ones, escaped unless plain text, strict."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jinja2
import pytest

from eventwatch import templating

if TYPE_CHECKING:
    from pathlib import Path

MARKUP = '<b title="x">&</b>'
ESCAPED = "&lt;b title=&#34;x&#34;&gt;&amp;&lt;/b&gt;"


def test_a_sites_own_template_wins_over_the_shipped_one(tmp_path: Path) -> None:
    """A template of the same name in the site's folder is used instead of the shipped one."""
    (tmp_path / "index.html.j2").write_text("Our own {{ title }}\n")
    assert templating.render("index.html.j2", tmp_path, title="page") == "Our own page\n"


def test_a_template_the_site_lacks_is_the_shipped_one(tmp_path: Path) -> None:
    """A name the site's folder does not hold comes from the shipped templates."""
    (tmp_path / "index.html.j2").write_text("Our own\n")
    values = {"title": "T", "feeds": [], "upcoming": [], "past": [], "version": "1"}
    shipped = templating.render("index.html.j2", **values)
    assert templating.render("index.html.j2", tmp_path / "missing", **values) == shipped
    assert "<!doctype html>" in shipped


def test_html_is_escaped(tmp_path: Path) -> None:
    """Values in an HTML template are escaped."""
    (tmp_path / "page.html.j2").write_text("{{ text }}")
    assert templating.render("page.html.j2", tmp_path, text=MARKUP) == ESCAPED


@pytest.mark.parametrize("name", ["layout.j2", "part.jinja", "page.html", "page"])
def test_a_template_of_any_other_name_is_escaped(tmp_path: Path, name: str) -> None:
    """Escaping is the default: a layout or part of any name escapes too."""
    (tmp_path / name).write_text("{{ text }}")
    assert templating.render(name, tmp_path, text=MARKUP) == ESCAPED


@pytest.mark.parametrize("name", ["mail.txt.j2", "mail.txt"])
def test_plain_text_is_not_escaped(tmp_path: Path, name: str) -> None:
    """Values in a plain-text template read as written: a mail client would show ``&amp;``."""
    (tmp_path / name).write_text("{{ text }}")
    assert templating.render(name, tmp_path, text=MARKUP) == MARKUP


def test_a_missing_value_raises(tmp_path: Path) -> None:
    """A template that names a value it was not given fails rather than printing nothing."""
    (tmp_path / "page.html.j2").write_text("Hello {{ nobody }}")
    with pytest.raises(jinja2.UndefinedError, match="nobody"):
        templating.render("page.html.j2", tmp_path)


def test_a_missing_template_raises(tmp_path: Path) -> None:
    """A name that neither the site nor the shipped templates hold fails."""
    with pytest.raises(jinja2.TemplateNotFound):
        templating.render("nowhere.html.j2", tmp_path)


def test_the_last_newline_is_kept(tmp_path: Path) -> None:
    """A template's final newline stays, so a mail body ends with one."""
    (tmp_path / "mail.txt.j2").write_text("{{ text }}\n")
    assert templating.render("mail.txt.j2", tmp_path, text="x") == "x\n"


def test_block_tags_leave_no_lines(tmp_path: Path) -> None:
    """A line that holds only a block tag leaves no blank line or indent behind."""
    (tmp_path / "mail.txt.j2").write_text("a\n  {% if on %}\nb\n  {% endif %}\nc\n")
    assert templating.render("mail.txt.j2", tmp_path, on=True) == "a\nb\nc\n"


def test_one_environment_per_folder(tmp_path: Path) -> None:
    """The environment of a folder is made once and reused."""
    assert templating.environment(tmp_path) is templating.environment(tmp_path)
    assert templating.environment(None) is not templating.environment(tmp_path)
