"""caniemail.com's data (../shared/tools/caniemail/_features) and what an HTML
mail uses of it: every CSS property, at-rule, selector, HTML element and attribute,
looked up for Gmail (web, iOS, Android, mobile web), Outlook for Windows and Apple
Mail (macOS, iOS) at each client's latest tested version.

FALLBACKS is the documented allow-list: a feature a client does not support ("n")
is acceptable only for the clients named there, and only while the fallback named
there is really in the HTML (``present``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import yaml
from lxml import html as lxml_html

from tests.sites import ROOT

# ../shared/tools next to the repository (a git worktree may sit deeper: look upwards)
TOOLS = next((p / "shared" / "tools" for p in ROOT.parents if (p / "shared" / "tools").is_dir()), ROOT.parent)
FEATURES = TOOLS / "caniemail" / "_features"
CLIENTS = {
    "gmail": ("desktop-webmail", "ios", "android", "mobile-webmail"),
    "outlook": ("windows",),
    "apple-mail": ("macos", "ios"),
}


@dataclass(frozen=True)
class Fallback:
    clients: tuple[str, ...]  # "family/platform" the fallback is for
    why: str
    present: Callable[[str], bool]  # the fallback is really in the digest's HTML


def _inline(html: str, class_name: str, *declarations: str) -> bool:
    """The element of ``class_name`` carries every declaration in its style attribute."""
    tag = re.search(rf'<[a-z0-9]+ [^>]*class="{class_name}"[^>]*>', html)
    style = tag.group(0).replace(" ", "") if tag else ""
    return all(d.replace(" ", "") in style for d in declarations)


def _mso(html: str) -> str:
    return "".join(re.findall(r"<!--\[if mso\]>(.*?)<!\[endif\]-->", html, re.S))


STYLE_DROPPED = ("gmail/mobile-webmail", "outlook/windows")
PREHEADER = ("gmail/mobile-webmail", "outlook/windows")
FALLBACKS: dict[str, Fallback] = {
    # Without the <style> block (Gmail's mobile web client and non-Google accounts
    # drop it): every rule that matters is inlined, the layout is fluid on its own.
    "html-style": Fallback(
        STYLE_DROPPED,
        "premailer inlined every plain rule",
        lambda h: _inline(h, "container", "width:100%", "max-width:600px", "background-color:#fff"),
    ),
    "css-at-media": Fallback(
        STYLE_DROPPED,
        "phone padding only; the inline layout is already fluid",
        lambda h: _inline(h, "container", "width:100%", "max-width:600px"),
    ),
    "css-selector-class": Fallback(STYLE_DROPPED, "selectors live in the <style> block only", lambda h: True),
    "css-selector-descendant": Fallback(STYLE_DROPPED, "as css-selector-class", lambda h: True),
    "css-selector-grouping": Fallback(STYLE_DROPPED, "as css-selector-class", lambda h: True),
    "css-selector-type": Fallback(STYLE_DROPPED, "as css-selector-class", lambda h: True),
    # Dark colours are an addition: the inline light colours are complete and legible
    # (test_digest_clients checks contrast without the <style> block).
    "css-at-media-prefers-color-scheme": Fallback(
        ("gmail/desktop-webmail", "gmail/ios", "gmail/android", "gmail/mobile-webmail", "outlook/windows"),
        "inline light colours on every coloured element",
        lambda h: (
            _inline(h, "container", "background-color:#fff", "color:#1d1d1b")
            and _inline(h, "headlines", "color:#1d1d1b")
        ),
    ),
    "html-meta-color-scheme": Fallback(
        (
            "gmail/desktop-webmail",
            "gmail/ios",
            "gmail/android",
            "gmail/mobile-webmail",
            "outlook/windows",
            "apple-mail/ios",
        ),
        "a hint only, as css-at-media-prefers-color-scheme",
        lambda h: _inline(h, "container", "background-color:#fff"),
    ),
    # The preheader: hidden by display:none, by mso-hide:all in Outlook, and
    # collapsed to nothing (max-height/overflow/1px font) where display is ignored.
    "css-display-none": Fallback(
        PREHEADER,
        "mso-hide:all for Outlook; max-height:0 + overflow:hidden + 1px type elsewhere",
        lambda h: _inline(h, "preheader", "mso-hide:all", "max-height:0", "overflow:hidden", "font-size:1px"),
    ),
    "css-max-height": Fallback(
        ("outlook/windows",),
        "preheader only: mso-hide:all",
        lambda h: _inline(h, "preheader", "mso-hide:all"),
    ),
    "css-overflow": Fallback(
        ("outlook/windows",),
        "preheader only: mso-hide:all",
        lambda h: _inline(h, "preheader", "mso-hide:all"),
    ),
    # Word's engine: no max-width on the container -> a 600 px table only it sees.
    "css-max-width": Fallback(
        ("outlook/windows",),
        "a fixed 600 px table in an Outlook-only conditional comment",
        lambda h: re.search(r'<table role="presentation" align="center" width="600"', _mso(h)) is not None,
    ),
    "html-doctype": Fallback(
        ("outlook/windows",), "Word ignores it; nothing relies on standards mode there", lambda h: True
    ),
}


def _front_matter(slug: str) -> dict | None:
    path = FEATURES / f"{slug}.md"
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8").split("---")[1]
    return yaml.safe_load(text.replace("\t", "  "))  # the data indents with tabs here and there


def support(slug: str) -> dict[str, str]:
    """Latest tested support per client: "y", "n", "a #1" ... ("?" when untested)."""
    data = _front_matter(slug)
    assert data is not None, slug
    out = {}
    for family, platforms in CLIENTS.items():
        for platform in platforms:
            versions = (data["stats"].get(family) or {}).get(platform) or {}
            out[f"{family}/{platform}"] = str(list(versions.values())[-1]) if versions else "?"
    return out


def notes(slug: str, value: str) -> str:
    """The caniemail notes a support value such as "a #1 #2" points to."""
    by_number = (_front_matter(slug) or {}).get("notes_by_num") or {}
    return " ".join(str(by_number.get(n, by_number.get(int(n), ""))) for n in re.findall(r"#(\d+)", value))


_SIDES = re.compile(r"-(top|right|bottom|left)(-(color|style|width))?$|-(color|style|width)$")
_ELEMENTS = {
    "h1": "html-h1-h6",
    "h2": "html-h1-h6",
    "h3": "html-h1-h6",
    "ul": "html-lists",
    "li": "html-lists",
}


def css_feature(prop: str, value: str) -> list[str]:
    prop = prop.strip().lower()
    found = [f"css-{prop}", f"css-{_SIDES.sub('', prop)}"]
    if prop == "display" and value.strip() in ("none", "flex", "grid"):
        found.append(f"css-display-{value.strip()}")
    if "!important" in value:
        found.append("css-important")
    for unit, slug in (("px", "css-unit-px"), ("%", "css-unit-percent"), ("pt", "css-unit-pt")):
        if re.search(rf"\d{re.escape(unit)}\b" if unit != "%" else r"\d%", value):
            found.append(slug)
    return found


def features_used(html: str) -> dict[str, set[str]]:
    """caniemail slug -> where the digest uses it (for the failure message)."""
    used: dict[str, set[str]] = {}

    def add(slug: str, where: str) -> None:
        if (FEATURES / f"{slug}.md").is_file():
            used.setdefault(slug, set()).add(where)

    if html.lstrip().lower().startswith("<!doctype"):
        add("html-doctype", "<!DOCTYPE>")
    if "<!--" in html:
        add("html-comments", "<!-- -->")
    tree = lxml_html.fromstring(html)
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        add(_ELEMENTS.get(el.tag, f"html-{el.tag}"), f"<{el.tag}>")
        if el.tag == "meta" and el.get("name") == "color-scheme":
            add("html-meta-color-scheme", '<meta name="color-scheme">')
        for attr in el.attrib:
            if attr not in ("style", "class", "href", "content", "name", "charset"):
                add(f"html-{attr}", f"<{el.tag} {attr}>")
        for declaration in (el.get("style") or "").split(";"):
            if ":" in declaration:
                prop, value = declaration.split(":", 1)
                for slug in css_feature(prop, value):
                    add(slug, f"<{el.tag} style> {prop.strip()}")
    uncommented = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    for sheet in re.findall(r"<style[^>]*>(.*?)</style>", uncommented, re.S):
        sheet = re.sub(r"/\*.*?\*/", "", sheet, flags=re.S)
        if "@media" in sheet:
            add("css-at-media", "@media")
        if "prefers-color-scheme" in sheet:
            add("css-at-media-prefers-color-scheme", "@media (prefers-color-scheme)")
        for selectors, body in re.findall(r"([^{}@]+)\{([^{}]*)\}", sheet):
            for selector in selectors.split(","):
                selector = selector.strip()
                if "," in selectors:
                    add("css-selector-grouping", selectors.strip())
                if "." in selector:
                    add("css-selector-class", selector)
                if " " in selector:
                    add("css-selector-descendant", selector)
                if re.match(r"^[a-z]", selector):
                    add("css-selector-type", selector)
                if ":" in selector:
                    add(f"css-pseudo-class-{selector.split(':', 1)[1]}", selector)
            for declaration in body.split(";"):
                if ":" in declaration:
                    prop, value = declaration.split(":", 1)
                    for slug in css_feature(prop, value):
                        add(slug, f"<style> {prop.strip()}")
    return used
