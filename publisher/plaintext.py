"""The digest's plain-text part as mail readers show it: lines wrapped at 76
columns, counted as a terminal draws them (a Hangul syllable takes two), breaking
only at spaces; a URL, or a personal field filled in per recipient, stands on a
line of its own (never broken, easy to copy); the signature separator "-- "
keeps its space (RFC 3676 4.3)."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

WIDTH = 76
SIGNATURE = "-- "
_URL_PREFIXES = ("http://", "https://", "mailto:")


def columns(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and full-width characters take two."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, own_line: Iterable[str] = (), width: int = WIDTH) -> str:
    """``text`` with every line wrapped to ``width`` columns; URLs and the words in
    ``own_line`` (personal fields: the same lines whatever fills them in) alone."""
    alone = set(own_line)
    out: list[str] = []
    for line in text.split("\n"):
        if line == SIGNATURE or (columns(line) <= width and not _has_alone(line, alone)):
            out.append(line)
            continue
        current: list[str] = []
        used = 0
        for word in line.split():
            if word.startswith(_URL_PREFIXES) or word in alone:
                if current:
                    out.append(" ".join(current))
                out.append(word)
                current, used = [], 0
                continue
            size = columns(word)
            if current and used + 1 + size > width:
                out.append(" ".join(current))
                current, used = [], 0
            used += size + (1 if current else 0)
            current.append(word)
        if current:
            out.append(" ".join(current))
    return "\n".join(out)


def _has_alone(line: str, alone: set[str]) -> bool:
    words = line.split()
    return len(words) > 1 and any(w in alone or w.startswith(_URL_PREFIXES) for w in words)
