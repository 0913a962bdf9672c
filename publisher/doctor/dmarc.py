"""DMARC records (RFC 9989): their syntax, where a domain's policy is found, and
which domains count as one organisation for alignment.

``parse(text)`` reads a ``v=DMARC1`` record into a ``DmarcRecord`` and lists what
is wrong (``errors``: receivers ignore the record or the tag) and what is dubious
(``warnings``: tags RFC 9989 removed, unknown tags, no aggregate reports).
``discover`` and ``organizational_domain`` are the DNS Tree Walk of RFC 9989
section 4.10: no public suffix list, at most 8 queries up the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from publisher.resolver import Resolver

_POLICIES = ("none", "quarantine", "reject")
_REMOVED = ("pct", "rf", "ri")  # RFC 7489 tags RFC 9989 dropped
_MAX_QUERIES = 8


@dataclass
class DmarcRecord:
    tags: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def p(self) -> str:
        return self.tags.get("p", "none") if self.tags.get("p") in _POLICIES else "none"

    @property
    def psd(self) -> str:
        return self.tags.get("psd", "u")

    @property
    def rua(self) -> list[str]:
        return _uris(self.tags.get("rua", ""))

    def aligned(self, kind: str) -> str:
        """``"s"`` (strict) or ``"r"`` (relaxed) alignment for ``kind`` "dkim" or "spf"."""
        return self.tags.get("adkim" if kind == "dkim" else "aspf", "r")


def is_dmarc(text: str) -> bool:
    return re.match(r"v\s*=\s*DMARC1\s*(;|$)", text) is not None


def parse(text: str) -> DmarcRecord:
    """Read a DMARC record; problems go to ``errors`` and ``warnings``, one line each."""
    record = DmarcRecord()
    pairs = [p.strip() for p in text.strip().split(";")]
    if pairs and pairs[-1] == "":
        pairs.pop()
    for i, pair in enumerate(pairs):
        name, eq, value = pair.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not eq or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            record.errors.append(f"{pair!r} is not a tag=value pair")
            continue
        if i == 0 and (name != "v" or value != "DMARC1"):
            record.errors.append(f"the record must start with v=DMARC1, not {pair!r}")
        if name in record.tags:
            record.errors.append(f"{name}= is given twice")
            continue
        record.tags[name] = value
        _check_tag(record, name, value)
    if "v" not in record.tags:
        record.errors.append("no v=DMARC1 tag")
    if "p" not in record.tags:
        record.warnings.append("no p= tag: receivers read it as p=none")
    if not record.rua and "rua" not in record.tags:
        record.warnings.append("no rua= tag: nobody sends you aggregate reports, so you never see who fails")
    return record


def _check_tag(record: DmarcRecord, name: str, value: str) -> None:
    choices = {
        "p": _POLICIES,
        "sp": _POLICIES,
        "np": _POLICIES,
        "adkim": ("r", "s"),
        "aspf": ("r", "s"),
        "psd": ("y", "n", "u"),
        "t": ("y", "n"),
    }
    if name == "v":
        return
    if name in choices:
        if value not in choices[name]:
            record.errors.append(f"{name}={value} must be one of {', '.join(choices[name])}")
    elif name in ("rua", "ruf"):
        for uri in _uris(value):
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s,;]+", uri):
                record.errors.append(
                    f"{name}= holds {uri!r}, which is not a URI (such as mailto:dmarc@example.com)"
                )
            elif "!" in uri:
                record.warnings.append(f"{name}= {uri!r}: the !size suffix was removed in RFC 9989")
    elif name == "fo":
        if not all(o.strip() in ("0", "1", "d", "s") for o in value.split(":")):
            record.errors.append(f"fo={value} must be 0, 1, d or s, separated by colons")
    elif name in _REMOVED:
        record.warnings.append(f"{name}= was removed in RFC 9989: receivers ignore it")
    else:
        record.warnings.append(f"unknown tag {name}= (ignored)")


def _uris(value: str) -> list[str]:
    return [u.strip() for u in value.split(",") if u.strip()]


def _walk(domain: str) -> list[str]:
    """The names the Tree Walk queries for ``domain``: itself, then (past 8 labels,
    from 7) each parent down to one label, at most 8 in all."""
    labels = domain.strip(".").lower().split(".")
    names = [".".join(labels)]
    if len(labels) > 7:
        labels = labels[-7:]
        names.append(".".join(labels))
    while len(labels) > 1:
        labels = labels[1:]
        names.append(".".join(labels))
    return names[:_MAX_QUERIES]


def _record_at(resolver: Resolver, name: str) -> str | None:
    found = [t for t in resolver.txt(f"_dmarc.{name}") if is_dmarc(t)]
    return found[0] if len(found) == 1 else None


def records_at(resolver: Resolver, name: str) -> list[str]:
    """Every DMARC record published at ``_dmarc.<name>`` (one is right)."""
    return [t for t in resolver.txt(f"_dmarc.{name}") if is_dmarc(t)]


def discover(resolver: Resolver, domain: str) -> tuple[str, str] | None:
    """The policy that applies to mail from ``domain``: (where it was found, the
    record), or None when no name on the way up publishes one."""
    for name in _walk(domain):
        text = _record_at(resolver, name)
        if text is not None:
            return name, text
    return None


def organizational_domain(resolver: Resolver, domain: str) -> str:
    """``domain``'s Organizational Domain (RFC 9989 4.10.2): the first name on the way
    up whose record says psd=n, the name below one whose record says psd=y, else the
    shortest name with a record; with no record anywhere, the domain itself."""
    names = _walk(domain)
    shortest = None
    for i, name in enumerate(names):
        text = _record_at(resolver, name)
        if text is None:
            continue
        psd = parse(text).psd
        if psd == "n":
            return name
        if psd == "y":
            return names[i - 1] if i > 0 else name
        shortest = name
    return shortest or names[0]


def aligned(resolver: Resolver, author: str, other: str, mode: str) -> bool:
    """Whether ``other`` (a DKIM d= or envelope domain) aligns with the From domain."""
    author, other = author.lower().strip("."), other.lower().strip(".")
    if author == other:
        return True
    if mode == "s":
        return False
    return organizational_domain(resolver, author) == organizational_domain(resolver, other)
