"""The only writer of output files: atomic, confined to one folder, and lazy.

A file is replaced by writing a temporary file beside it and renaming it over the
old one, so a reader never sees half a feed; a file whose bytes are unchanged is not
touched at all, so its mtime and HTTP validators stay put. Paths are checked to stay
inside the output folder, and one run may not write the same path twice.

Writes are staged: ``write`` puts the new bytes in a temporary file beside the
target, and ``commit`` flushes them all to disk with one filesystem sync (not one
fsync per file, which would make a 100,000-page build take minutes) before renaming
each over its target. A folder that does not exist yet (``articles/`` in a first
build) is staged whole instead: its files are written straight into a hidden sibling
folder, which ``commit`` renames into place after the same sync, so a reader sees no
folder or the complete one and 100,000 new pages cost one rename, not 100,000. Used
as a context manager, the writer commits on success and removes its temporary files
and folders on an error.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import posixpath
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from publisher import staging
from publisher.errors import OutputError

log = logging.getLogger(__name__)

MANIFEST = ".publisher-manifest.json"
BUILD_LOCK = ".publisher-build.lock"


def built_version(root: Path) -> int | None:
    """The store's content version the output folder ``root`` was last built whole
    from (its manifest says), or None: no web edition, or none built with a version."""
    if not (root / "index.html").is_file():
        return None
    try:
        return _read_manifest(root / MANIFEST)[1]
    except (OSError, ValueError):
        return None


def stale(root: Path, built: int | None, current: int) -> str | None:
    """Why the output folder ``root``, built from content version ``built``, cannot be
    served as current while the store is at ``current`` (one line), or None."""
    if not (root / "index.html").is_file():
        return f"no web edition in {root} yet"
    if built is None or built < current:
        return f"{root} was built from content version {built}, the store is at {current}"
    return None


@contextmanager
def building(root: Path) -> Iterator[None]:
    """One whole build of the output folder ``root`` at a time on this machine (the
    CLI's and each server's): an flock on a hidden file in it, which the system
    releases when its holder dies."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / BUILD_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise _cannot_write(root.resolve(), exc) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Lazy:
    """A file made only when needed: ``key`` fingerprints everything it shows.

    When the last run wrote this path with the same key and the file is still there
    with the size then recorded, it is left alone without being made or read; this
    is what keeps a run over 100,000 unchanged pages cheap.
    """

    key: str
    make: Callable[[], bytes | str]


class Writer:
    def __init__(
        self, root: Path, *, dry_run: bool = False, complete: bool = False, version: int | None = None
    ) -> None:
        """``complete``: this run writes the whole output, so any file an earlier
        complete run wrote and this one did not (a withdrawn article's page, a
        category that has no articles left) is removed at commit. ``version``: the
        store's content version this complete run shows (kept in the manifest, which
        is renamed into place last: ``built_version``)."""
        self.root = root.resolve()
        self.dry_run = dry_run
        self.complete = complete
        self.version = version
        self.written: list[str] = []  # relative paths whose bytes changed
        self.unchanged: list[str] = []
        self.removed: list[str] = []  # files of an earlier run that this run no longer has
        self._seen: set[str] = set()
        self._staged: list[tuple[str, Path]] = []  # (temporary file, target)
        self._new_dirs: dict[Path, Path] = {}  # a folder that did not exist -> its hidden stand-in
        self._placed: dict[Path, Path | None] = {}  # a target's folder -> its stand-in, or None
        self._direct: list[str] = []  # files written straight into a stand-in folder
        self._mode = staging.file_mode()
        self._dirs: set[Path] = set()
        self._safe_dirs: set[str] = set()  # folders (relative) known to stay inside
        self._prefix = str(self.root).rstrip("/") + "/"
        self._manifest: dict[str, list] | None = None  # path -> [key, size], loaded on first use
        self._manifest_version: int | None = None  # the content version the manifest names
        self._manifest_tmp: str | None = None  # the new manifest, staged during commit
        self._manifest_dirty = False

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        if kind is None:
            try:
                self.commit()
            except OSError as error:
                self.abort()
                raise self._cannot_write(error) from error
            return
        self.abort()
        if isinstance(exc, OSError) and self._is_ours(exc):
            raise self._cannot_write(exc) from exc

    def _is_ours(self, exc: OSError) -> bool:
        """Whether ``exc`` is about a file of the output folder (not, say, a template)."""
        name = exc.filename
        return name is None or str(name).startswith(self._prefix) or Path(name) == self.root

    def _cannot_write(self, exc: OSError) -> OutputError:
        return _cannot_write(self.root, exc)

    def path_for(self, relative: str) -> Path:
        """``relative`` inside the output folder; refuses ``..``, absolute paths and
        folders that resolve (through symlinks) outside it."""
        norm = posixpath.normpath(relative.replace(os.sep, "/"))
        if norm in (".", "..") or norm.startswith(("../", "/")):
            raise OutputError(f"refusing to write {relative!r}: outside {self.root}")
        folder = norm.rpartition("/")[0]  # checked once per folder, by name: no Path hashing per file
        if folder not in self._safe_dirs:
            if not (self.root / folder).resolve().is_relative_to(self.root):
                raise OutputError(f"refusing to write {relative!r}: outside {self.root}")
            self._safe_dirs.add(folder)
        return self.root / norm

    def write(self, relative: str, data: bytes | str | Lazy) -> bool:
        """Stage ``data`` for ``relative``; return True if the file's bytes change."""
        target = self.path_for(relative)
        key = target.relative_to(self.root).as_posix() if os.sep != "/" else str(target)[len(self._prefix) :]
        if key in self._seen:
            raise OutputError(f"{key} written twice in one run")
        self._seen.add(key)
        if isinstance(data, Lazy):
            manifest = self._load_manifest()
            known = manifest.get(key)
            if known is not None and known[0] == data.key and staging.size(target) == known[1]:
                self.unchanged.append(key)
                return False
            lazy, data = data, data.make()
            if isinstance(data, str):
                data = data.encode("utf-8")
            manifest[key] = [lazy.key, len(data)]
            self._manifest_dirty = True
        else:
            if isinstance(data, str):
                data = data.encode("utf-8")
            if self.complete and key not in (manifest := self._load_manifest()):
                manifest[key] = ["", 0]  # tracked, so that it can be removed when gone
                self._manifest_dirty = True
        direct = None if self.dry_run else self._stand_in(target)
        if direct is None:
            try:
                with open(target, "rb") as fh:
                    if fh.read(len(data) + 1) == data:
                        self.unchanged.append(key)
                        return False
            except OSError:
                pass
        self.written.append(key)
        if direct is not None:
            staging.write_new(direct, data, self._mode)
            self._direct.append(direct)
        elif not self.dry_run:
            self._staged.append((staging.write_temporary(target, data, self._dirs, self._mode), target))
        return True

    def _stand_in(self, target: Path) -> str | None:
        """Where ``target`` is written when its folder is new in this run: the same
        path inside the folder's hidden stand-in (made now, renamed at commit);
        None when the folder already exists (a temporary file beside the target)."""
        parent = target.parent
        if parent in self._placed:
            inner = self._placed[parent]
            return None if inner is None else f"{inner}/{target.name}"
        top = None
        for folder in (parent, *parent.parents):
            if folder in self._new_dirs:
                top = folder
                break
            if folder == self.root or not folder.is_relative_to(self.root) or folder.exists():
                break
            top = folder
        if top is None:
            self._placed[parent] = None
            return None
        stand_in = self._new_dirs.get(top)
        if stand_in is None:
            top.parent.mkdir(parents=True, exist_ok=True)
            stand_in = top.parent / f".{top.name}.{secrets.token_hex(4)}.tmp"
            stand_in.mkdir()
            self._new_dirs[top] = stand_in
        inner = stand_in / parent.relative_to(top)
        inner.mkdir(parents=True, exist_ok=True)
        self._placed[parent] = inner
        return f"{inner}/{target.name}"

    def write_all(self, files: Iterable[tuple[str, bytes | str | Lazy]]) -> None:
        """``write`` each file."""
        for relative, data in files:
            self.write(relative, data)

    def _load_manifest(self) -> dict[str, list]:
        """What the last run wrote (path -> [key, size]). A manifest that does not
        parse, or names a path outside the output folder, is ignored with a warning:
        every file is then made afresh and nothing is removed on its word."""
        if self._manifest is None:
            path = self.root / MANIFEST
            try:
                self._manifest, self._manifest_version = _read_manifest(path)
            except FileNotFoundError:
                self._manifest = {}
            except OSError as exc:
                log.warning("%s: ignored, it cannot be read (%s)", path, exc)
                self._manifest = {}
            except ValueError as exc:
                log.warning("%s: ignored, %s", path, exc)
                self._manifest = {}
        return self._manifest

    def commit(self) -> None:
        """Make every staged file durable, then rename each over its target.

        A lazy file that an earlier run made and this run did not (the page of a
        withdrawn article) is removed, so the web edition holds no stale pages.
        """
        if self.complete:
            self._load_manifest()
        gone = sorted(k for k in self._manifest or () if k not in self._seen) if self.complete else []
        version = self.version if self.complete else self._manifest_version
        manifest_tmp = self._manifest_tmp = None
        if (self._manifest_dirty or gone or version != self._manifest_version) and not self.dry_run:
            files = self._manifest or {}
            data = json.dumps(
                {
                    "content_version": version,
                    "files": {k: files[k] for k in sorted(files) if k in self._seen or not self.complete},
                },
                separators=(",", ":"),
            )
            manifest_tmp = staging.write_temporary(
                self.root / MANIFEST, data.encode(), self._dirs, self._mode
            )
            self._manifest_tmp = manifest_tmp
            self._manifest_dirty = False
        if self._staged or self._new_dirs or manifest_tmp:
            synced = (
                [tmp for tmp, _ in self._staged] + self._direct + ([manifest_tmp] if manifest_tmp else [])
            )
            staging.sync(self.root, synced)
            staged, self._staged = self._staged, []
            new_dirs, self._new_dirs = self._new_dirs, {}
            self._direct, self._placed = [], {}
            for top, stand_in in sorted(new_dirs.items()):
                staging.move_folder(stand_in, top)
            for tmp, target in staged:
                os.replace(tmp, target)
        for key in gone:
            if not self._inside(key):  # never on a manifest's word alone
                log.warning("%s: not removed, it is not inside %s", key, self.root)
                continue
            self.removed.append(key)
            if not self.dry_run:
                try:
                    (self.root / key).unlink()
                except FileNotFoundError:
                    pass
        if manifest_tmp:  # last: the version it names holds once every file is in place
            os.replace(manifest_tmp, self.root / MANIFEST)
            self._manifest_version, self._manifest_tmp = version, None
        if self.complete and not self.dry_run:
            self._sweep_leftovers()

    def _inside(self, key: str) -> bool:
        """``key`` names a file inside the output folder, through any symlinked folder."""
        if _manifest_problem({key: ["", 0]}):
            return False
        return (self.root / key).parent.resolve().is_relative_to(self.root)

    def _sweep_leftovers(self) -> None:
        """Remove the hidden temporary files and folders (``.name.*.tmp``) a killed run
        left in the folders this run wrote; ours are all renamed by now, and every
        writer of a site holds its lock, so any left are a dead run's."""
        folders = {self.root} | {(self.root / key).parent for key in self._seen}
        for folder in folders:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    try:
                        os.unlink(entry.path)
                    except FileNotFoundError:
                        pass

    def abort(self) -> None:
        """Forget the staged files; the old outputs stay as they were."""
        staged, self._staged = self._staged, []
        if self._manifest_tmp is not None:
            staged.append((self._manifest_tmp, self.root / MANIFEST))
            self._manifest_tmp = None
        for tmp, _ in staged:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        new_dirs, self._new_dirs = self._new_dirs, {}
        self._direct, self._placed = [], {}
        for stand_in in new_dirs.values():
            shutil.rmtree(stand_in, ignore_errors=True)


def _cannot_write(root: Path, exc: OSError) -> OutputError:
    """A failed write as one line: the folder, the file, the reason, what to do."""
    prefix = str(root).rstrip("/") + "/"
    name = str(exc.filename) if exc.filename is not None else ""
    what = f" ({name[len(prefix) :]})" if name.startswith(prefix) else ""
    hint = {
        errno.ENOSPC: "free some space",
        errno.EDQUOT: "free some space",
        errno.EROFS: "make it writable",
        errno.EACCES: "make it writable",
        errno.EPERM: "make it writable (chattr -i?)",
    }.get(exc.errno or 0, "fix it")
    reason = exc.strerror or str(exc)
    return OutputError(
        f"cannot write the web edition in {root}{what}: {reason}; {hint}, then run again "
        "(the files already there are unchanged)"
    )


def _read_manifest(path: Path) -> tuple[dict[str, list], int | None]:
    """A manifest's files (path -> [key, size]) and content version. Raises OSError,
    or ValueError naming what is wrong with it. The manifest of a release before
    content versions (the files' object alone) has no version."""
    loaded = json.loads(path.read_bytes())
    version = None
    if isinstance(loaded, dict) and isinstance(loaded.get("files"), dict):
        if set(loaded) != {"content_version", "files"}:
            raise ValueError(f"it has keys other than content_version and files: {sorted(loaded)}")
        version = loaded["content_version"]
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            raise ValueError(f"its content_version {version!r} is not a number")
        loaded = loaded["files"]
    problem = _manifest_problem(loaded)
    if problem:
        raise ValueError(problem)
    return loaded, version


def _manifest_problem(manifest: object) -> str | None:
    """What is wrong with a loaded manifest (None: nothing): it must map relative,
    normalised paths inside the folder to [key, size]."""
    if not isinstance(manifest, dict):
        return "it is not a JSON object"
    for key, value in manifest.items():
        if (
            not key
            or "\0" in key
            or posixpath.isabs(key)
            or posixpath.normpath(key) != key
            or key == ".."
            or key.startswith("../")
            or key == MANIFEST
        ):
            return f"it names {key!r}, which is not a file inside the output folder"
        if not (
            isinstance(value, list)
            and len(value) == 2
            and isinstance(value[0], str)
            and isinstance(value[1], int)
        ):
            return f"its entry for {key!r} is not [key, size]"
    return None


def write_atomic(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` so that readers see the old or the new file."""
    writer = Writer(target.parent)
    with writer:
        writer.write(target.name, data)
