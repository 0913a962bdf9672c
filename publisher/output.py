"""The only writer of output files: atomic, confined to one folder, and lazy.

A file is replaced by writing a temporary file beside it and renaming it over the
old one, so a reader never sees half a feed; a file whose bytes are unchanged is not
touched at all, so its mtime and HTTP validators stay put. Paths are checked to stay
inside the output folder, and one run may not write the same path twice.

Writes are staged: ``write`` puts the new bytes in a temporary file beside the
target, and ``commit`` flushes them all to disk with one filesystem sync (not one
fsync per file, which would make a 100,000-page build take minutes) before renaming
each over its target. Used as a context manager, the writer commits on success and
removes its temporary files on an error.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tempfile
from pathlib import Path
from types import TracebackType


class OutputError(Exception):
    pass


class Writer:
    def __init__(self, root: Path, *, dry_run: bool = False) -> None:
        self.root = root.resolve()
        self.dry_run = dry_run
        self.written: list[str] = []  # relative paths whose bytes changed
        self.unchanged: list[str] = []
        self._seen: set[str] = set()
        self._staged: list[tuple[str, Path]] = []  # (temporary file, target)
        self._dirs: set[Path] = set()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()

    def path_for(self, relative: str) -> Path:
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root) or target == self.root:
            raise OutputError(f"refusing to write {relative!r}: outside {self.root}")
        return target

    def write(self, relative: str, data: bytes | str) -> bool:
        """Stage ``data`` for ``relative``; return True if the file's bytes change."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        target = self.path_for(relative)
        key = target.relative_to(self.root).as_posix()
        if key in self._seen:
            raise OutputError(f"{key} written twice in one run")
        self._seen.add(key)
        try:
            with open(target, "rb") as fh:
                if fh.read(len(data) + 1) == data:
                    self.unchanged.append(key)
                    return False
        except OSError:
            pass
        self.written.append(key)
        if not self.dry_run:
            self._staged.append((_write_temporary(target, data, self._dirs), target))
        return True

    def commit(self) -> None:
        """Make every staged file durable, then rename each over its target."""
        if not self._staged:
            return
        _sync(self.root, [tmp for tmp, _ in self._staged])
        staged, self._staged = self._staged, []
        for tmp, target in staged:
            os.replace(tmp, target)

    def abort(self) -> None:
        """Forget the staged files; the old outputs stay as they were."""
        staged, self._staged = self._staged, []
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass


def _write_temporary(target: Path, data: bytes, made: set[Path]) -> str:
    parent = target.parent
    if parent not in made:
        parent.mkdir(parents=True, exist_ok=True)
        made.add(parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return tmp


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if os.name == "posix" else None


def _sync(root: Path, files: list[str]) -> None:
    """Flush ``files`` to disk: one syncfs(2) of the output's filesystem where Linux
    has it, else one fsync per file."""
    if _libc is not None and hasattr(_libc, "syncfs") and len(files) > 8:
        fd = os.open(root, os.O_RDONLY)
        try:
            if _libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for name in files:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` so that readers see the old or the new file."""
    writer = Writer(target.parent)
    with writer:
        writer.write(target.name, data)
