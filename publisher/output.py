"""The only writer of output files: atomic, confined to one folder, and lazy.

A file is replaced by writing a temporary file beside it and renaming it over the
old one, so a reader never sees half a feed; a file whose bytes are unchanged is not
touched at all, so its mtime and HTTP validators stay put. Paths are checked to stay
inside the output folder, and one run may not write the same path twice.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputError(Exception):
    pass


class Writer:
    def __init__(self, root: Path, *, dry_run: bool = False) -> None:
        self.root = root.resolve()
        self.dry_run = dry_run
        self.written: list[str] = []  # relative paths whose bytes changed
        self.unchanged: list[str] = []
        self._seen: set[str] = set()

    def path_for(self, relative: str) -> Path:
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root) or target == self.root:
            raise OutputError(f"refusing to write {relative!r}: outside {self.root}")
        return target

    def write(self, relative: str, data: bytes | str) -> bool:
        """Write ``data`` to ``relative``; return True if the file's bytes changed."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        target = self.path_for(relative)
        key = target.relative_to(self.root).as_posix()
        if key in self._seen:
            raise OutputError(f"{key} written twice in one run")
        self._seen.add(key)
        try:
            if target.read_bytes() == data:
                self.unchanged.append(key)
                return False
        except OSError:
            pass
        self.written.append(key)
        if self.dry_run:
            return True
        write_atomic(target, data)
        return True


def write_atomic(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` so that readers see the old or the new file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
