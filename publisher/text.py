"""Pure text helpers shared by every stage: no I/O, no third-party imports."""

from __future__ import annotations

import re
import unicodedata

# XML 1.0 allows #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]; of
# those, HTML also forbids the C1 controls U+0080-U+009F (and XML discourages them).
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_LINE_BREAKS = re.compile(r"[\r\n\u0085\u2028\u2029\x0b\x0c\x1c-\x1e]+")
_SPACES = re.compile(r"\s+")


def xml_safe(text: str) -> str:
    """Remove the characters XML 1.0 or HTML forbid (C0 and C1 controls but tab and
    line breaks, DEL, surrogates, U+FFFE/U+FFFF), so feeds stay well-formed and valid."""
    return _XML_FORBIDDEN.sub("", text)


def single_line(text: str) -> str:
    """One line of plain text: no control characters, no line breaks, spaces folded.

    Used for titles, names and anything that may reach a mail header.
    """
    if text.isprintable():  # the usual case: no control, format or separator characters
        return _SPACES.sub(" ", text).strip()
    text = _LINE_BREAKS.sub(" ", text)
    text = "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cs") and ch not in "\ufffe\uffff"
    )
    return _SPACES.sub(" ", text).strip()


def slugify(text: str, max_length: int = 80) -> str:
    """A lowercase ASCII slug; non-Latin text falls back to an empty string."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()
    return text[:max_length].rstrip("-")


def name_case(name: str) -> str:
    """Ordinary capitalisation for an upper-case byline name.

    "JEONG JAE-HONG" -> "Jeong Jae-hong" (Korean given names keep one capital),
    "MARY O'NEIL" -> "Mary O'Neil".
    """
    words = []
    for word in single_line(name).split(" "):
        if not word:
            continue
        parts = word.lower().split("-")
        parts[0] = _cap(parts[0])
        words.append("-".join(parts))
    return " ".join(words)


def _cap(word: str) -> str:
    if "'" in word:
        head, _, tail = word.partition("'")
        return f"{head[:1].upper()}{head[1:]}'{tail[:1].upper()}{tail[1:]}"
    return word[:1].upper() + word[1:]


def summarize(text: str, limit: int = 280) -> str:
    """The first ``limit`` characters of plain text, cut at a word, with an ellipsis."""
    text = single_line(text)
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


# A full stop, ! or ? (and closing quotes) before a space and a word that does not go
# on in lower case ("e.g. this" is one sentence), or a CJK full stop.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s+[^\sa-z])|[。！？]")


def title_from_text(text: str, limit: int = 80) -> str:
    """A title for an item that has none (a microblog post): the first sentence of its
    text, shortened on a word boundary to at most ``limit`` characters with an ellipsis."""
    text = single_line(text)
    if m := _SENTENCE_END.search(text):
        text = text[: m.end()]
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :] or text[limit - 1] == " ":
        cut = cut if text[limit - 1] == " " else cut.rsplit(" ", 1)[0]
    return cut.rstrip(",;:-–— ") + "…"
