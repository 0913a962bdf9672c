"""Files for the output writer (``publisher.output``): created at mode 0644, staged as
hidden temporaries beside their targets, folders moved into place, flushed with one
sync."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path


def size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def file_mode() -> int | None:
    """The mode ``os.open(..., 0o644)`` gives under this process's umask when that is
    0o644 (no fchmod needed), else None (each file is chmod-ed to 0o644)."""
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return 0o644 if int(line.split()[1], 8) & 0o644 == 0 else None
    except (OSError, ValueError):
        pass
    return None


def write_new(path: str, data: bytes, mode: int | None) -> None:
    """Create ``path`` (which must not exist) holding ``data``, mode 0o644."""
    fd = os.open(path, _CREATE, 0o644)
    try:
        if mode is None:
            os.fchmod(fd, 0o644)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def write_temporary(target: Path, data: bytes, made: set[Path], mode: int | None = None) -> str:
    parent = target.parent
    if parent not in made:
        parent.mkdir(parents=True, exist_ok=True)
        made.add(parent)
    tmp = f"{parent}/.{target.name}.{os.getpid()}.tmp"
    try:
        write_new(tmp, data, mode)
    except FileExistsError:  # left by a run that died, or another writer's: a fresh name
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
        os.unlink(tmp)
        write_new(tmp, data, None)
    return tmp


def move_folder(stand_in: Path, target: Path) -> None:
    """Rename a staged folder into place; if ``target`` appeared meanwhile (another
    writer), move its files over one by one instead."""
    try:
        os.rename(stand_in, target)
        return
    except OSError:
        if not target.is_dir():
            raise
    for folder, _, names in os.walk(stand_in):
        dest = target / Path(folder).relative_to(stand_in)
        dest.mkdir(parents=True, exist_ok=True)
        for name in names:
            os.replace(os.path.join(folder, name), dest / name)
    shutil.rmtree(stand_in, ignore_errors=True)


_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if os.name == "posix" else None


def sync(root: Path, files: list[str]) -> None:
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
