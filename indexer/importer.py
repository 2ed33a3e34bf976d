"""``sumo import``: bring your own embeddings, no model needed.

Two inputs:

- ``VECTORS.npy`` (N × D floats) with ``--ids IDS.txt`` (N lines) and optionally
  ``--metadata FILE.jsonl|FILE.parquet`` (N rows, in the same order);
- a clip-retrieval output folder: ``img_emb/img_emb_<i>.npy`` with
  ``metadata/metadata_<i>.parquet``; ids come from the metadata's ``image_path``, ``url``
  or ``key`` column (the first present), else from the global row number.

Everything is checked before the first write (counts, dimension, model, NaN/zero rows,
duplicate ids), so a bad file never leaves a half-import behind. Vectors are read through
``np.load(mmap_mode="r")`` and streamed in chunks, so memory stays bounded at 1M × 512.
Rows are L2-normalised on the way in. Items get ``{"item_id", "metadata": {...}}``
payloads. Import is idempotent (upserts by id), so re-running after a crash finishes it.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from indexer.errors import CollectionMismatch, SumoError
from indexer.store.base import IMPORT_PREFIX, CollectionSpec, Item, Store

log = logging.getLogger(__name__)

ID_COLUMNS = ("image_path", "url", "key")


class ImportFailed(SumoError):
    """The input files are inconsistent or unreadable; nothing was written."""


# --- input description ------------------------------------------------------------------
@dataclass
class Part:
    """One vectors file and what goes with it."""

    vectors: Path
    ids: list[str] | None = None  # None: derive from metadata or row numbers
    metadata: Path | None = None
    rows: int = 0
    dim: int = 0


@dataclass
class Source:
    name: str
    parts: list[Part] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def dim(self) -> int:
        return self.parts[0].dim if self.parts else 0


def _shape(path: Path) -> tuple[int, int]:
    try:
        arr = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise ImportFailed(f"cannot read {path} as a .npy array: {exc}") from exc
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise ImportFailed(
            f"{path} holds a {arr.dtype} array of shape {arr.shape}; expected N × D floats"
        )
    return int(arr.shape[0]), int(arr.shape[1])


def _read_ids(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        ids = [line.rstrip("\r\n") for line in f]
    if ids and ids[-1] == "":  # tolerate one trailing blank line
        ids.pop()
    for i, x in enumerate(ids):
        if not x.strip():
            raise ImportFailed(f"{path}: line {i + 1} is empty; every vector needs an id")
    return ids


def _metadata_rows(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def _suffix_number(path: Path) -> int:
    m = re.search(r"(\d+)$", path.stem)
    return int(m.group(1)) if m else -1


def describe(
    source: Path, ids: Path | None = None, metadata: Path | None = None
) -> Source:
    """Read shapes and ids and check that everything lines up; reads no vectors yet."""
    if source.is_dir():
        if ids is not None or metadata is not None:
            raise ImportFailed("--ids and --metadata apply to a .npy file, not a folder")
        return _describe_clip_retrieval(source)
    if not source.exists():
        raise ImportFailed(f"{source} does not exist")
    if ids is None:
        raise ImportFailed(f"importing {source} needs --ids FILE with one id per vector")
    rows, dim = _shape(source)
    id_list = _read_ids(ids)
    if len(id_list) != rows:
        raise ImportFailed(f"{source} has {rows} vectors but {ids} has {len(id_list)} ids")
    if metadata is not None:
        if metadata.suffix not in (".jsonl", ".json", ".ndjson", ".parquet"):
            raise ImportFailed(f"{metadata}: metadata must be JSON lines or parquet")
        n = _metadata_rows(metadata)
        if n != rows:
            raise ImportFailed(f"{source} has {rows} vectors but {metadata} has {n} rows")
    return Source(source.stem, [Part(source, id_list, metadata, rows, dim)])


def _describe_clip_retrieval(folder: Path) -> Source:
    emb = sorted((folder / "img_emb").glob("img_emb_*.npy"), key=_suffix_number)
    if not emb:
        raise ImportFailed(
            f"{folder} is not a clip-retrieval output folder: no img_emb/img_emb_*.npy"
        )
    src = Source(folder.resolve().name)
    for path in emb:
        rows, dim = _shape(path)
        meta = folder / "metadata" / f"metadata_{path.stem.removeprefix('img_emb_')}.parquet"
        part = Part(path, None, meta if meta.exists() else None, rows, dim)
        if part.metadata is not None:
            n = _metadata_rows(part.metadata)
            if n != rows:
                raise ImportFailed(f"{path} has {rows} vectors but {part.metadata} has {n} rows")
        if src.parts and dim != src.dim:
            raise ImportFailed(f"{path} has {dim}-d vectors, {src.parts[0].vectors} {src.dim}-d")
        src.parts.append(part)
    return src


# --- streaming --------------------------------------------------------------------------
def _json_value(v: Any) -> Any:
    """Parquet cells as JSON-safe values (payloads are JSON)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    return str(v)


def _metadata_chunks(path: Path | None, rows: int, chunk: int) -> Iterator[list[dict[str, Any]]]:
    if path is None:
        while True:
            yield [{} for _ in range(chunk)]
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        pending: list[dict[str, Any]] = []
        for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk):
            pending += [{k: _json_value(v) for k, v in r.items()} for r in batch.to_pylist()]
            while len(pending) >= chunk:
                yield pending[:chunk]
                pending = pending[chunk:]
        if pending:
            yield pending
    else:
        with open(path, encoding="utf-8") as f:
            buf: list[dict[str, Any]] = []
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ImportFailed(f"{path}:{n}: not JSON: {exc}") from exc
                if not isinstance(row, dict):
                    raise ImportFailed(f"{path}:{n}: each line must be a JSON object")
                buf.append(row)
                if len(buf) == chunk:
                    yield buf
                    buf = []
            if buf:
                yield buf


def _ids_for(part: Part, offset: int, meta: list[dict[str, Any]], start: int) -> list[str]:
    if part.ids is not None:
        return part.ids[start:start + len(meta)]
    for col in ID_COLUMNS:
        if meta and col in meta[0]:
            out = []
            for j, m in enumerate(meta):
                v = m.get(col)
                if v is None or str(v) == "":
                    raise ImportFailed(f"{part.metadata}: row {start + j} has no {col!r}")
                out.append(str(v))
            return out
    return [str(offset + start + j) for j in range(len(meta))]


def _check_rows(block: NDArray[Any], part: Part, start: int) -> NDArray[np.float32]:
    x = np.asarray(block, dtype=np.float32)
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = (np.flatnonzero(bad)[:5] + start).tolist()
        raise ImportFailed(f"{part.vectors}: rows {rows} contain NaN or infinite values")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        rows = (np.flatnonzero(norms == 0)[:5] + start).tolist()
        raise ImportFailed(f"{part.vectors}: rows {rows} are all zeros and have no direction")
    out: NDArray[np.float32] = x / norms[:, None]
    return out


def validate(src: Source, chunk: int = 16384) -> None:
    """A read-only pass over the vectors (and derived ids): fail before writing anything."""
    seen: dict[str, int] = {}
    offset = 0
    for part in src.parts:
        arr = np.load(part.vectors, mmap_mode="r")
        metas = _metadata_chunks(part.metadata, part.rows, chunk)
        for start in range(0, part.rows, chunk):
            block = arr[start:start + chunk]
            _check_rows(block, part, start)
            meta = next(metas)[: len(block)]
            for j, iid in enumerate(_ids_for(part, offset, meta, start)):
                if iid in seen:
                    raise ImportFailed(
                        f"id {iid!r} appears twice (rows {seen[iid]} and {offset + start + j})"
                    )
                seen[iid] = offset + start + j
        offset += part.rows


class _Progress:
    """tqdm on a terminal, a log line every few seconds otherwise."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.t0, self.last = total, 0, time.monotonic(), 0.0
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="vec", unit_scale=True, desc="import")

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.monotonic()
        if now - self.last >= 5 or self.done == self.total:
            self.last = now
            rate = self.done / max(now - self.t0, 1e-9)
            log.info("imported %d/%d vectors (%.0f/s)", self.done, self.total, rate)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def spec_model(source_name: str, model: str | None, pretrained: str | None) -> str:
    """The model recorded with the collection: ``import:<name>`` unless told otherwise.

    ``--model ViT-B-32 [--pretrained TAG]`` names the CLIP that made the vectors, recorded as
    ``ViT-B-32/TAG`` like ``sumo index`` does; a value with ``/`` or ``:`` is taken as is.
    """
    if not model:
        return IMPORT_PREFIX + source_name
    if "/" in model or ":" in model:
        return model
    return f"{model}/{pretrained or 'none'}"


@dataclass(frozen=True)
class ImportResult:
    imported: int
    spec: CollectionSpec
    seconds: float


def import_vectors(
    store: Store, source: Path, *, ids: Path | None = None, metadata: Path | None = None,
    model: str | None = None, pretrained: str | None = None, batch: int = 1024,
) -> ImportResult:
    t0 = time.monotonic()
    src = describe(source, ids, metadata)
    if src.rows == 0:
        raise ImportFailed(f"{source} holds no vectors")
    spec = CollectionSpec(dim=src.dim, model=spec_model(src.name, model, pretrained))
    stored = store.spec()
    if stored is not None:  # check before the long validation pass, not after
        try:
            store.ensure_collection(spec)
        except CollectionMismatch as exc:
            if stored.dim == spec.dim and model is None:
                raise CollectionMismatch(
                    f"{exc}. If these vectors were made by {stored.model!r}, "
                    f"say so with --model {stored.model}"
                ) from None
            raise
    validate(src)
    store.ensure_collection(spec)
    progress = _Progress(src.rows)
    offset = 0
    try:
        for part in src.parts:
            arr = np.load(part.vectors, mmap_mode="r")
            metas = _metadata_chunks(part.metadata, part.rows, batch)
            for start in range(0, part.rows, batch):
                x = _check_rows(arr[start:start + batch], part, start)
                meta = next(metas)[: len(x)]
                item_ids = _ids_for(part, offset, meta, start)
                store.upsert([
                    Item(iid, x[j], {"metadata": meta[j]} if meta[j] else {})
                    for j, iid in enumerate(item_ids)
                ])
                progress.update(len(x))
            offset += part.rows
    finally:
        progress.close()
    log.info("building the search index (optimize)")
    store.optimize()
    store.flush()
    return ImportResult(src.rows, spec, time.monotonic() - t0)


def summarize(result: ImportResult, store: Store) -> str:
    return (
        f"imported {result.imported} vectors ({result.spec.dim}-d, model {result.spec.model!r}) "
        f"in {result.seconds:.1f}s; the collection now holds {store.count()} items"
    )

