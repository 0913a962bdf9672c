"""What a subscribe or preferences form asks for, read against the site's newsletters.

Fields (application/x-www-form-urlencoded, read by ``read_form``):

- ``newsletter=<key>``, any number. An empty value only says "this form lists the
  newsletters" (both forms carry one, hidden): a form whose newsletter fields are all
  empty chose none. A form with no ``newsletter`` field at all did not say: subscribing,
  that means the newsletters with ``signup = true`` (a plain ``email=`` form, as before
  newsletters); on the preference centre it changes nothing.
- ``section=<key>:<slug>`` (preference centre; the subscribe form offers newsletters
  whole): narrow newsletter ``<key>`` (one with ``reader_sections``) to the section
  ``<slug>``; several allowed. Sections of a newsletter not chosen are
  ignored (its boxes stay ticked when the reader unticks the newsletter). None, or every
  one the newsletter offers: the whole newsletter, sections added later included.
- ``all=unsubscribe`` (preference centre): leave every newsletter.

A key or section the site does not have raises ``UnknownChoice`` (the view says so on a
page of its own); nothing is chosen by half.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from starlette.requests import Request

from publisher.errors import UnknownChoice
from publisher.links import category_slug

MAX_FORM = 8 * 1024
MAX_FIELDS = 1000
SEPARATOR = ":"  # section=<newsletter key>:<section slug>; keys are letters, digits, hyphens


class Newsletter(Protocol):
    key: str
    sections: Any
    reader_sections: bool
    signup: bool


@dataclass(frozen=True)
class Choice:
    """Newsletters chosen, in the site's order: key -> the section slugs the reader
    narrowed it to (() = the whole newsletter)."""

    sections: dict[str, tuple[str, ...]]

    @property
    def keys(self) -> list[str]:
        return list(self.sections)


def section_value(key: str, slug: str) -> str:
    """The value of a ``section`` field."""
    return f"{key}{SEPARATOR}{slug}"


def offered_sections(newsletter: Newsletter) -> list[str]:
    """The section slugs a reader may narrow ``newsletter`` to, in the configuration's
    order; none unless ``reader_sections``."""
    if not newsletter.reader_sections:
        return []
    return list(dict.fromkeys(category_slug(name) for name in newsletter.sections))


def choice(newsletters: Sequence[Newsletter], form: dict[str, list[str]]) -> Choice | None:
    """The newsletters and sections ``form`` chose; None when it has no ``newsletter``
    field at all (it did not say). Raises ``UnknownChoice``."""
    fields = form.get("newsletter")
    if fields is None:
        return None
    by_key = {n.key: n for n in newsletters}
    wanted = set()
    for value in fields:
        key = value.strip()
        if key and key not in by_key:
            raise UnknownChoice(key)
        if key:
            wanted.add(key)
    narrowed: dict[str, set[str]] = {}
    for value in form.get("section", []):
        key, separator, slug = value.strip().partition(SEPARATOR)
        newsletter = by_key.get(key)
        if not separator or newsletter is None or slug not in offered_sections(newsletter):
            raise UnknownChoice(value.strip())
        narrowed.setdefault(key, set()).add(slug)
    chosen: dict[str, tuple[str, ...]] = {}
    for n in newsletters:
        if n.key in wanted:
            offered = offered_sections(n)
            picked = tuple(slug for slug in offered if slug in narrowed.get(n.key, ()))
            chosen[n.key] = () if len(picked) == len(offered) else picked
    return Choice(chosen)


@dataclass(frozen=True)
class SectionBox:
    value: str  # the ``section`` field's value
    name: str
    chosen: bool


@dataclass(frozen=True)
class NewsletterBox:
    """One newsletter as the preference centre shows it."""

    key: str
    title: str
    description: str
    chosen: bool  # active, or asked for and not confirmed yet
    pending: bool
    sections: list[SectionBox]


def boxes(
    newsletters: Sequence[Any],
    held: Mapping[str, tuple[str, Sequence[str]]],
    names: Mapping[str, str] | None = None,
) -> list[NewsletterBox]:
    """Every newsletter with the reader's choices (``held``: key -> (status, section
    slugs)); a newsletter taken whole shows every section ticked. ``names``: slug -> the
    name readers see for a section (else the slug)."""
    names = names or {}
    shown = []
    for n in newsletters:
        status, narrowed = held.get(n.key, ("", ()))
        sections = [
            SectionBox(section_value(n.key, slug), names.get(slug, slug), not narrowed or slug in narrowed)
            for slug in offered_sections(n)
        ]
        chosen = status in ("active", "pending")
        shown.append(NewsletterBox(n.key, n.title, n.description, chosen, status == "pending", sections))
    return shown


def signup_choice(newsletters: Sequence[Newsletter]) -> Choice:
    """What a subscribe form that did not say chose: the newsletters with ``signup = true``."""
    return Choice({n.key: () for n in newsletters if n.signup})


async def read_form(request: Request) -> dict[str, list[str]] | None:
    """An application/x-www-form-urlencoded body (or none); None when too large (bytes
    or fields); {} when it is not UTF-8 form data."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:  # more fields than any of our forms has
        return None
