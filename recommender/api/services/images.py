"""Resized item images, from indexed folders only, kept in a small in-memory LRU.

The endpoint takes an item id, never a path: the file comes from the item's payload
(``files``/``paths``, written by ``sumo index``; names that are not UTF-8 are read
from their exact bytes, see ``indexer.paths``), and is served only if, after resolving symlinks, it
lies under one of the indexed roots (document ``("corpus", "roots")``). A payload path or a
symlink pointing elsewhere is refused, so the API can never be turned into a file reader.

Sizes snap up to a few buckets so that the cache is not fragmented by every screen width,
and images are never scaled up. Transparency is kept, so a feed shows a cut-out on its own
background: WebP carries alpha, and where JPEG was asked for a transparent image comes
as PNG instead (JPEG has no alpha; flattening onto a colour would invent a background).
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from indexer.errors import NotFound, SumoError
from indexer.paths import item_paths, unpack_roots
from indexer.store.base import Store
from recommender.api.schemas import ImageFormat

SIZES = (128, 256, 512, 768, 1024, 1536, 2048)
ROOTS_TTL_S = 5.0  # re-read the indexed roots this often (an index run may add one)
_MEDIA = {ImageFormat.JPEG: "image/jpeg", ImageFormat.WEBP: "image/webp"}


def bucket(size: int) -> int:
    """The smallest standard size at least ``size`` (the largest if none is)."""
    return next((s for s in SIZES if s >= size), SIZES[-1])


@dataclass(frozen=True)
class RenderedImage:
    data: bytes
    media_type: str
    etag: str


class ImageService:
    """Blocking and thread-safe; run it in the thread pool."""

    def __init__(self, store: Store, *, capacity: int = 512, max_bytes: int = 128 << 20) -> None:
        self.store = store
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._cache: OrderedDict[tuple[object, ...], RenderedImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._roots: tuple[float, list[Path]] = (0.0, [])

    def render(self, item_id: str, size: int, fmt: ImageFormat) -> RenderedImage:
        size = bucket(size)
        path = self.source(item_id)
        st = path.stat()
        # The file's identity is part of the key: a re-saved image is never served stale.
        key = (item_id, size, fmt, str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        image = _resize(path, size)
        buf = io.BytesIO()
        media = _MEDIA[fmt]
        if fmt is ImageFormat.WEBP:
            image.save(buf, "WEBP", quality=80, method=4)
        elif image.mode == "RGBA":
            image.save(buf, "PNG", compress_level=6)
            media = "image/png"
        else:
            image.save(buf, "JPEG", quality=85, optimize=False, progressive=True)
        etag = '"' + hashlib.blake2b(repr(key).encode(), digest_size=12).hexdigest() + '"'
        rendered = RenderedImage(buf.getvalue(), media, etag)
        self._remember(key, rendered)
        return rendered

    def source(self, item_id: str) -> Path:
        """The item's image file, resolved and checked to be under an indexed root."""
        items = self.store.retrieve([item_id])
        if not items:
            raise NotFound(f"no item {item_id!r}")
        roots = self.roots()
        for raw in item_paths(items[0].payload):
            candidate = Path(raw)
            if not candidate.is_absolute():
                continue  # relative paths would resolve against our working directory
            try:
                resolved = candidate.resolve(strict=True)
            except (OSError, RuntimeError):
                continue  # gone, or a symlink loop
            if any(resolved.is_relative_to(root) for root in roots) and resolved.is_file():
                return resolved
        raise NotFound(f"item {item_id!r} has no image file under the indexed folders")

    def roots(self) -> list[Path]:
        loaded_at, roots = self._roots
        if time.monotonic() - loaded_at < ROOTS_TTL_S:
            return roots
        doc = self.store.get_document("corpus", "roots")
        raw = unpack_roots(doc.body) if doc is not None else []
        roots = []
        for r in raw:
            try:
                roots.append(Path(r).resolve(strict=True))
            except (OSError, RuntimeError):
                continue  # an indexed folder that is gone serves nothing
        self._roots = (time.monotonic(), roots)
        return roots

    def _remember(self, key: tuple[object, ...], rendered: RenderedImage) -> None:
        if len(rendered.data) > self.max_bytes or self.capacity <= 0:
            return
        with self._lock:
            old = self._cache.pop(key, None)
            if old is not None:
                self._bytes -= len(old.data)
            self._cache[key] = rendered
            self._bytes += len(rendered.data)
            while len(self._cache) > self.capacity or self._bytes > self.max_bytes:
                _, evicted = self._cache.popitem(last=False)
                self._bytes -= len(evicted.data)

    @property
    def cached(self) -> int:
        return len(self._cache)


def _resize(path: Path, size: int) -> Image.Image:
    try:
        from indexer.images import open_image

        image = open_image(path, draft_size=(size, size), keep_alpha=True)
    except SumoError as exc:  # BadImage: unreadable or not an image
        raise NotFound(f"image file of this item cannot be read: {exc}") from exc
    if max(image.size) > size:
        image.thumbnail((size, size), Image.Resampling.BICUBIC)
    return image
