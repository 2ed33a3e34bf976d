"""Find the image files under the given paths, with the (size, mtime) that incremental
indexing compares against. Nothing here opens a file."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from indexer.images import image_extensions


@dataclass(frozen=True, slots=True)
class FileStat:
    path: str  # absolute, as reached from the root (symlinks not resolved)
    size: int
    mtime_ns: int

    def matches(self, entry: dict[str, object]) -> bool:
        """Whether a payload ``files`` entry recorded exactly this file version."""
        return entry.get("size") == self.size and entry.get("mtime_ns") == self.mtime_ns

    def record(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "mtime_ns": self.mtime_ns}


@dataclass
class ScanResult:
    files: dict[str, FileStat] = field(default_factory=dict)  # by path, sorted
    roots: list[str] = field(default_factory=list)  # absolute paths that exist
    missing_roots: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, why it was not listed)
    ignored: int = 0  # files whose suffix no Pillow decoder claims (sidecars, videos...)


def scan(paths: Iterable[str | os.PathLike[str]], extensions: frozenset[str] | None = None
         ) -> ScanResult:
    """Walk ``paths`` recursively.

    Hidden files and folders below a root are skipped (thumbnail caches, ``.git``), folder
    symlinks are not followed (no loops), file symlinks are. A file named explicitly is
    taken whatever its suffix, so a mislabelled image still gets its say.
    """
    exts = extensions if extensions is not None else image_extensions()
    out = ScanResult()
    found: dict[str, FileStat] = {}
    for raw in paths:
        root = os.path.abspath(os.path.expanduser(os.fspath(raw)))
        if os.path.isfile(root):
            out.roots.append(root)
            st = os.stat(root)
            found[root] = FileStat(root, st.st_size, st.st_mtime_ns)
        elif os.path.isdir(root):
            out.roots.append(root)
            _walk(root, exts, found, out)
        else:
            out.missing_roots.append(root)
    out.files = dict(sorted(found.items()))
    return out


def _walk(root: str, exts: frozenset[str], found: dict[str, FileStat], out: ScanResult) -> None:
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError as exc:
            out.errors.append((folder, f"cannot list folder: {exc.strerror or exc}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file():
                    if Path(entry.name).suffix.lower() not in exts:
                        out.ignored += 1
                        continue
                    st = entry.stat()
                    found[entry.path] = FileStat(entry.path, st.st_size, st.st_mtime_ns)
            except OSError as exc:  # vanished, broken symlink, permissions
                out.errors.append((entry.path, f"cannot stat: {exc.strerror or exc}"))
