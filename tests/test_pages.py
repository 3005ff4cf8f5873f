"""The index page, and the HTML that calendar text reaches: escaped on the page and in the mail.

The mail's HTML comes from the same templating module as the page, a site's own templates
included, so its escaping is tested here too.
"""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from eventwatch import feeds, messages, pages, publication
from eventwatch.models import Calendar, ReminderPolicy

from .helpers import SENDER, SENT, ics_of, reminder

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from eventwatch.revisions import Revision

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
ESCAPED = {
    SCRIPT: "&lt;script&gt;alert(1)&lt;/script&gt;",
    ATTRIBUTE: "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;",
}


class _NoRevisions:
    """A revision store that remembers nothing: every event is new."""

    def revisions(self) -> dict[str, Revision]:
        """None stored."""
        return {}

    def save_revisions(self, changed: Iterable[Revision]) -> dict[str, Revision]:
        """Forget them; they are what is stored, for this once."""
        return {r.uid: r for r in changed}


def page(
    *, name: str = "Alpha", description: str = "", title: str = "Meeting", location: str = ""
) -> str:
    """The index page of one calendar with one upcoming event, holding the texts given."""
    calendar = Calendar.model_validate(
        {
            "id": "alpha",
            "name": name,
            "description": description,
            "timezone": "UTC",
            "events": [
                {"id": "meeting", "title": title, "location": location, "start": date(2026, 6, 1)}
            ],
        },
    )
    options = publication.Options(timedelta(hours=1), alarms=False, defaults=ReminderPolicy())
    built = publication.build((calendar,), options, _NoRevisions(), feeds.Renderer(), NOW)
    return pages.render(built, "https://cal.example.org/", NOW).decode()


@pytest.mark.parametrize("text", [SCRIPT, ATTRIBUTE])
@pytest.mark.parametrize("field", ["name", "description", "title", "location"])
def test_calendar_text_is_escaped_on_the_page(field: str, text: str) -> None:
    """A calendar's name and description, an event's title and place come out escaped."""
    made = page(**{field: f"Text {text}"})
    assert f"Text {ESCAPED[text]}" in made
    assert text not in made


class _Markup(HTMLParser):
    """The tags of a page in order, and the text inside its ``<strong>`` (the event titles)."""

    def __init__(self, page: str) -> None:
        """Read ``page`` through."""
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]] | str] = []
        self.strong = ""
        self._in_strong = False
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note the tag with its attributes."""
        self.tags.append((tag, attrs))
        self._in_strong = self._in_strong or tag == "strong"

    def handle_endtag(self, tag: str) -> None:
        """Note the end tag."""
        self.tags.append("/" + tag)
        self._in_strong = self._in_strong and tag != "strong"

    def handle_comment(self, data: str) -> None:
        """A comment is markup too."""
        self.tags.append("!--" + data)

    def handle_data(self, data: str) -> None:
        """Keep the text of the titles."""
        if self._in_strong:
            self.strong += data


_CHARACTERS = st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"])
_MARKUP = ["<", ">", "&", '"', "'", "</strong>", "<!--", "-->", "&lt;", "&#", "{{ title }}"]
lines = st.lists(
    st.one_of(st.sampled_from([SCRIPT, ATTRIBUTE, *_MARKUP]), st.text(_CHARACTERS, max_size=8)),
    max_size=6,
).map("".join)
"""One line of calendar text, heavy in markup."""
titles = lines.filter(str.strip)
paragraphs = st.lists(st.one_of(lines, st.just("\n"), st.just("\t")), max_size=4).map("".join)


@given(name=titles, description=paragraphs, title=titles, location=lines)
@example(name=SCRIPT, description=ATTRIBUTE, title="<", location="</strong><b>")
def test_calendar_text_adds_no_markup(
    name: str, description: str, title: str, location: str
) -> None:
    """Any calendar text leaves the page's tags as they are, and the title reads back as written."""
    made = page(name=name, description=description, title=title, location=location)
    plain = page(
        description="x" if description.strip() else "",
        location="x" if location else "",
    )
    assert made.count("<") == plain.count("<")
    parsed = _Markup(made)
    assert parsed.tags == _Markup(plain).tags
    assert parsed.strong == title


def html_mail(templates_dir: Path | None = None, **event: str) -> str:
    """The HTML part of the reminder of one event with the texts given."""
    return mail_part("html", templates_dir, **event)


def mail_part(subtype: str, templates_dir: Path | None = None, **event: str) -> str:
    """The ``subtype`` part (html or plain) of the reminder of one event with the texts given."""
    found = reminder(**event)
    sender = messages.Sender(SENDER.address, templates_dir)
    made = messages.build(found, sender, sent_at=SENT, ics=ics_of(found))
    parsed = email.message_from_bytes(bytes(made), policy=email.policy.default)
    return str(parsed.get_body(preferencelist=(subtype,)).get_content())


@pytest.mark.parametrize("text", [SCRIPT, ATTRIBUTE])
@pytest.mark.parametrize("field", ["title", "location", "description"])
def test_calendar_text_is_escaped_in_the_html_mail(field: str, text: str) -> None:
    """An event's title, place and description come out escaped in the shipped HTML mail."""
    made = html_mail(**{field: f"Text {text}"})
    assert f"Text {ESCAPED[text]}" in made
    assert text not in made


def test_a_sites_own_html_mail_is_escaped(tmp_path: Path) -> None:
    """A site's own reminder.html.j2 escapes calendar text just as the shipped one does."""
    (tmp_path / "reminder.html.j2").write_text("<h1>{{ title }}</h1><p>{{ location }}</p>\n")
    made = html_mail(tmp_path, title=SCRIPT, location=ATTRIBUTE)
    assert made == f"<h1>{ESCAPED[SCRIPT]}</h1><p>{ESCAPED[ATTRIBUTE]}</p>\n"


def test_a_template_a_sites_html_mail_extends_is_escaped(tmp_path: Path) -> None:
    """A layout of any name that a site's reminder.html.j2 extends or includes escapes too."""
    (tmp_path / "reminder.html.j2").write_text(
        '{% extends "layout.j2" %}{% block body %}{% include "where.jinja" %}{% endblock %}'
    )
    (tmp_path / "layout.j2").write_text("<title>{{ title }}</title>{% block body %}{% endblock %}")
    (tmp_path / "where.jinja").write_text("<p>{{ location }}</p>\n")
    made = html_mail(tmp_path, title=SCRIPT, location=ATTRIBUTE)
    assert made == f"<title>{ESCAPED[SCRIPT]}</title><p>{ESCAPED[ATTRIBUTE]}</p>\n"


def test_a_sites_own_text_mail_is_not_escaped(tmp_path: Path) -> None:
    """A site's own reminder.txt.j2 shows calendar text as written: a mail client shows no HTML."""
    (tmp_path / "reminder.txt.j2").write_text("{{ title }} @ {{ location }}\n")
    text = mail_part("plain", tmp_path, title=SCRIPT, location=ATTRIBUTE)
    assert text == f"{SCRIPT} @ {ATTRIBUTE}\n"
