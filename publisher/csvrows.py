"""Reading a CSV file of any length in batches: how every import (``publish subscribers
import``, ``publish suppressions import``) reads its file, so a list of any length
takes the memory of one batch.

A file is checked whole before any row is used (``open_checked``: readable, UTF-8), then
read ``BATCH`` rows at a time (``Rows.batches``): each row checked by the importer's
own function, a bad one kept as a problem naming the file and its line. Problems are
reported in line order as each batch is stored (``Rejections``); a report counts them
all and keeps the first ``KEPT_PROBLEMS``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TextIO, TypeVar

from publisher.errors import UsageError

BATCH = 1000  # rows read, checked and stored together: memory does not grow with the file
KEPT_PROBLEMS = 100  # problems a report keeps (each one is also given to ``on_problem``)

T = TypeVar("T")


def open_checked(path: str) -> TextIO:
    """``path`` opened for reading rows, after reading it whole once, a megabyte at a
    time: a file that cannot be read or is not UTF-8 is a UsageError before any of it
    is imported, so it changes nothing."""
    try:
        with open(path, encoding="utf-8") as text:
            while text.read(1 << 20):
                pass
        return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 (the caller closes it)
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


@dataclass
class Batch(Generic[T]):
    rows: list[tuple[int, T]]  # (line number, the checked row)
    problems: list[tuple[int, str]]  # (line number, "FILE:LINE: what is wrong")


class Rows:
    """The rows of a CSV text (a string, or lines: an open file is read as it goes),
    with lower-cased column names and stripped values."""

    def __init__(self, text: str | Iterable[str], filename: str) -> None:
        if isinstance(text, str):
            text = io.StringIO(text.lstrip("\ufeff"))
        self.filename = filename
        self.reader = csv.DictReader(text)
        self.names = [(f or "").strip().lower() for f in self.reader.fieldnames or []]

    def column(self, *names: str) -> str:
        """The first of ``names`` the header line has, or UsageError naming them."""
        found = next((n for n in names if n in self.names), None)
        if found is None:
            wanted = f"'{names[0]}'" + "".join(f" (or '{n}')" for n in names[1:])
            raise UsageError(f"{self.filename}: no {wanted} column in the header line")
        return found

    def batches(self, check: Callable[[dict[str, str]], T], size: int = BATCH) -> Iterator[Batch[T]]:
        """The rows ``size`` at a time, each passed through ``check`` (a UsageError it
        raises is that line's problem); the last batch may be empty."""
        batch: Batch[T] = Batch([], [])
        for row in self.reader:
            line = self.reader.line_num
            clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
            try:
                batch.rows.append((line, check(clean)))
            except UsageError as exc:
                batch.problems.append((line, f"{self.filename}:{line}: {exc}"))
            if len(batch.rows) + len(batch.problems) >= size:
                yield batch
                batch = Batch([], [])
        yield batch


@dataclass
class Rejections:
    """The bad rows of an import: every one counted, the first ``KEPT_PROBLEMS`` kept."""

    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    def reject(self, problems: Iterable[tuple[int, str]], on_problem: Callable[[str], None] | None) -> None:
        """Count ``problems`` (line, text), in line order, each also given to ``on_problem``."""
        for _, problem in sorted(problems):
            self.rejected += 1
            if len(self.problems) < KEPT_PROBLEMS:
                self.problems.append(problem)
            if on_problem is not None:
                on_problem(problem)
