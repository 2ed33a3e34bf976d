"""``sumo index``: embed image folders into the store, incrementally and crash-safely.

How a run goes:

1. Check the collection's model (cheaply, before loading torch) and record the roots.
2. Scan the folders and compare each file's (path, size, mtime_ns) with the ``files`` the
   store's payloads record: matching files are skipped without being read.
3. Read the rest in decoder threads or processes (or on Ray workers: ``embed_step``): hash
   the bytes (the item id is the content hash, so a file keeps its id across runs and
   renames), and decode + preprocess only content the store has not seen. Decoding
   overlaps with model inference in the main thread.
4. Write in batches, in an order that never loses a path: new items first, then items
   that gain paths, then items that lose them. Items left without paths are deleted at
   the end of the run.

All state lives in the store and every write is idempotent (deterministic point ids,
upserts), so a run killed at any point is finished by the next one: paths whose recorded
version matches the disk are done, anything else is redone, and stale claims from an
interrupted move are dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from numpy.typing import NDArray
from PIL import Image

from indexer.embedder import cpu_count, model_spec
from indexer.errors import CollectionMismatch, NotFound, StoreUnavailable
from indexer.images import BadImage, Reason, decode
from indexer.paths import RAW_KEY, pack, pack_roots, readable, unpack, unpack_roots
from indexer.progress import Progress
from indexer.scan import FileStat, ScanResult, scan
from indexer.settings import CorpusSettings
from indexer.store import Document, Item, Store, open_store

if TYPE_CHECKING:
    from indexer.embedder import Embedder

log = logging.getLogger(__name__)

ROOTS_NAMESPACE, ROOTS_KEY = "corpus", "roots"
# Files that could not be decoded, with the version that failed: an unchanged bad file is
# not read again (so a re-run over an unchanged folder needs no model at all).
FAILURES_KEY = "failures"
ID_HEX_CHARS = 32  # 128 bits of sha256: collisions are not a practical concern
DECODER_NICE = 10  # niceness of decoder threads when the model runs on the CPU
MAX_PENDING_UPDATES = 256  # payload-only changes (renames, duplicates) per write batch
EXAMPLES_PER_REASON = 5
STORE_REFUSED = "refused by the store (see the log)"
# Failures that mean the bytes at a path changed (so its old item loses the path), as
# opposed to a file that could not be read this time.
CONTENT_FAILURES = frozenset(
    {Reason.EMPTY, Reason.NOT_IMAGE, Reason.CORRUPT, Reason.BOMB, Reason.UNSUPPORTED}
)


def content_id(data: bytes) -> str:
    """The item id of a file's bytes."""
    return hashlib.sha256(data).hexdigest()[:ID_HEX_CHARS]


# --- what the store knows --------------------------------------------------------------
Record = dict[str, Any]  # one payload ``files`` entry: {"path", "size", "mtime_ns"}


@dataclass
class _Entry:
    stored: dict[str, Record]  # path -> record, as the store has it now
    want: dict[str, Record]  # path -> record, as it should be after the next write
    extra: dict[str, Any] = field(default_factory=dict)  # payload of a new item
    new: bool = False  # no vector in the store yet


class Catalog:
    """In-memory mirror of which item claims which path, plus the writes to reach ``want``."""

    def __init__(self) -> None:
        self.items: dict[str, _Entry] = {}
        self.owners: dict[str, set[str]] = {}  # path -> ids whose ``want`` has it
        self.dirty: set[str] = set()
        # Told of each write the store refused (paths, why, whether a new item was lost);
        # the run reports them as failures of those files and goes on (see ``write``).
        self.on_refused: Callable[[list[str], str, bool], None] = lambda paths, why, new: None

    @classmethod
    def load(cls, store: Store) -> Catalog:
        cat = cls()
        for it in store.scroll(with_payload=True):
            files = it.payload.get("files")
            if not isinstance(files, list):
                continue  # imported vectors: not ours to track
            unpacked = (_unpack_record(r) for r in files if isinstance(r, dict) and "path" in r)
            recs = {r["path"]: r for r in unpacked}
            cat.items[it.id] = _Entry(stored=recs, want=dict(recs))
            for p in recs:
                cat.owners.setdefault(p, set()).add(it.id)
            # An item without paths (left by a killed run) is deleted by finish().
        return cat

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.items

    def claims(self, path: str) -> set[str]:
        return self.owners.get(path, set())

    def create(self, item_id: str, stat: FileStat, width: int, height: int) -> None:
        self.items[item_id] = _Entry({}, {}, {"width": width, "height": height}, new=True)
        self.claim(item_id, stat)

    def claim(self, item_id: str, stat: FileStat) -> None:
        """``stat.path`` now holds ``item_id``'s bytes; every other claim on it is stale."""
        self.release(stat.path, keep=item_id)
        self.items[item_id].want[stat.path] = stat.record()
        self.owners.setdefault(stat.path, set()).add(item_id)
        self.dirty.add(item_id)

    def release(self, path: str, keep: str | None = None) -> int:
        """Drop every claim on ``path`` except ``keep``'s; returns how many were dropped."""
        dropped = 0
        for other in list(self.claims(path)):
            if other != keep:
                del self.items[other].want[path]
                self.owners[path].discard(other)
                self.dirty.add(other)
                dropped += 1
        return dropped

    def write(self, store: Store, vectors: dict[str, Any]) -> None:
        """Write every pending change; ``vectors`` must cover every new item.

        Order matters for crash safety: a path is added to its new owner before it is
        removed from the old one, so at any instant every indexed path has an owner.
        """
        new = [i for i in self.dirty if self.items[i].new]
        if new:
            self._upsert(store, [
                Item(i, vectors[i], _payload(i, self.items[i].want, self.items[i].extra))
                for i in new
            ])
        gaining, losing = [], []
        for i in self.dirty:
            e = self.items[i]
            if e.new:
                continue
            if e.want.keys() - e.stored.keys() or any(e.want[p] != e.stored[p] for p in e.want
                                                       if p in e.stored):
                gaining.append(i)
            if e.stored.keys() - e.want.keys():
                losing.append(i)
        for i in gaining:
            e = self.items[i]
            try:
                store.set_payload(i, _paths_payload({**e.stored, **e.want}))
            except StoreUnavailable:
                raise
            except Exception as exc:  # the store's own error: those files' failure
                self._refuse_paths(i, exc)
        for i in losing:
            e = self.items[i]
            if e.want:  # emptied items stay (vector kept for a later claim) until finish()
                store.set_payload(i, _paths_payload(e.want))
            elif e.stored:
                store.set_payload(i, _paths_payload({}))
        for i in self.dirty:
            e = self.items[i]
            e.stored, e.new, e.extra = dict(e.want), False, {}
        self.dirty = set()

    def _upsert(self, store: Store, items: list[Item]) -> None:
        """Upsert new items; an item the store refuses is that item's files' failure.

        A refused batch is retried item by item, so one bad payload does not cost its
        neighbours. A store that is down (``StoreUnavailable``) still stops the run.
        """
        try:
            store.upsert(items)
            return
        except StoreUnavailable:
            raise
        except Exception as exc:  # decided item by item below
            if len(items) == 1:
                self._refuse(items[0].id, exc)
                return
        for it in items:
            try:
                store.upsert([it])
            except StoreUnavailable:
                raise
            except Exception as exc:  # the store's own error, reported
                self._refuse(it.id, exc)

    def _refuse(self, item_id: str, exc: Exception) -> None:
        """Forget a new item the store did not take: its files are retried next run."""
        entry = self.items.pop(item_id)
        for p in entry.want:
            self.owners[p].discard(item_id)
        self.dirty.discard(item_id)
        self._report(item_id, list(entry.want), exc, new=True)

    def _refuse_paths(self, item_id: str, exc: Exception) -> None:
        """Undo the claims a refused payload write would have made: retried next run."""
        e = self.items[item_id]
        gained = [p for p in e.want if e.want[p] != e.stored.get(p)]
        for p in gained:
            if p in e.stored:
                e.want[p] = e.stored[p]  # a touched file: its old version stays recorded
            else:
                del e.want[p]
                self.owners[p].discard(item_id)
        self._report(item_id, gained, exc, new=False)

    def _report(self, item_id: str, paths: list[str], exc: Exception, *, new: bool) -> None:
        why = f"{type(exc).__name__}: {exc}"
        log.warning("the store refused a write of item %s (%s): %s", item_id,
                    ", ".join(readable(p) for p in paths), why)
        self.on_refused(paths, why, new)

    def finish(self, store: Store) -> int:
        """Delete items no path claims any more; returns how many."""
        empty = [i for i, e in self.items.items() if not e.want and not e.new]
        if empty:
            store.delete(empty)
        for i in empty:
            del self.items[i]
        return len(empty)


def _unpack_record(r: Record) -> Record:
    """A stored ``files`` record as the catalog keeps it: the file system's path, no extras."""
    return {**{k: v for k, v in r.items() if k != RAW_KEY}, "path": unpack(r)}


def _paths_payload(recs: dict[str, Record]) -> dict[str, Any]:
    # Paths that are not UTF-8 get a readable ``path`` and their exact bytes (indexer.paths).
    ordered = [{**recs[p], **pack(p)} for p in sorted(recs)]
    return {"paths": [r["path"] for r in ordered], "files": ordered}


def _payload(item_id: str, recs: dict[str, Record], extra: dict[str, Any]) -> dict[str, Any]:
    return {"item_id": item_id, **_paths_payload(recs), **extra}


# --- reading files (decoder threads or processes) -----------------------------------
@dataclass(frozen=True)
class Failed:
    stat: FileStat
    reason: Reason
    detail: str = ""


@dataclass(frozen=True)
class Seen:
    """Bytes the store already has an item for (a duplicate or a renamed file)."""

    stat: FileStat
    item_id: str


@dataclass(frozen=True)
class Decoded:
    stat: FileStat
    item_id: str
    pixels: NDArray[Any]  # Embedder.prepare output
    width: int
    height: int


Result = Failed | Seen | Decoded


class Reader:
    """Reads, hashes, decodes and preprocesses one file; safe to call from threads."""

    def __init__(
        self, prepare: Callable[[Image.Image], NDArray[Any]], draft: tuple[int, int],
        known: Callable[[str], bool],
    ) -> None:
        self.prepare = prepare
        self.draft = draft
        self.known = known

    def __call__(self, stat: FileStat) -> Result:
        try:
            with open(stat.path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            return Failed(stat, Reason.VANISHED)
        except OSError as exc:
            return Failed(stat, Reason.UNREADABLE, exc.strerror or str(exc))
        # Record the version actually read: a file rewritten since the scan is then
        # re-checked next run instead of being trusted with the wrong vector.
        stat = FileStat(stat.path, st.st_size, st.st_mtime_ns)
        if not data:
            return Failed(stat, Reason.EMPTY)
        item_id = content_id(data)
        if self.known(item_id):
            return Seen(stat, item_id)
        try:
            image, (width, height) = decode(data, draft_size=self.draft)
            return Decoded(stat, item_id, self.prepare(image), width, height)
        except BadImage as exc:
            return Failed(stat, exc.reason, exc.detail)


class KnownIds:
    """A snapshot of the store's item ids, picklable for decoder processes. Content first
    seen in this run is then decoded twice at most; the main loop still counts it as a
    duplicate, since it checks the live catalog."""

    def __init__(self, ids: Iterable[str]) -> None:
        self.ids = frozenset(ids)

    def __call__(self, item_id: str) -> bool:
        return item_id in self.ids


_process_reader: Reader | None = None  # set once in each decoder process


def _start_decoder_process(reader: Reader, nice: int) -> None:
    global _process_reader
    _process_reader = reader
    if nice > 0:
        with contextlib.suppress(OSError):
            os.nice(nice)


def _read_in_process(stat: FileStat) -> Result:
    assert _process_reader is not None, "decoder process started without its reader"
    return _process_reader(stat)


def _ordered(
    pool: Executor, fn: Callable[[FileStat], Result], todo: Sequence[FileStat],
    ahead: int,
) -> Iterator[Result]:
    """``map`` with at most ``ahead`` files in flight, so memory stays bounded."""
    queue: deque[Future[Result]] = deque()
    it = iter(todo)
    for stat in it:
        queue.append(pool.submit(fn, stat))
        if len(queue) >= ahead:
            break
    while queue:
        result = queue.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            queue.append(pool.submit(fn, nxt))
        yield result


# --- the run ---------------------------------------------------------------------------
@dataclass
class IndexReport:
    roots: list[str] = field(default_factory=list)
    missing_roots: list[str] = field(default_factory=list)
    scanned: int = 0
    unchanged: int = 0
    indexed: int = 0  # files embedded this run (new content)
    changed: int = 0  # ... of which replaced an earlier version at the same path
    duplicates: int = 0  # files whose bytes an item already had (copies, renames)
    pruned: int = 0  # paths removed because their files are gone
    deleted_items: int = 0  # items removed because no path holds them any more
    missing: int = 0  # indexed files gone from disk, kept because --prune was not given
    ignored: int = 0  # files whose suffix no image decoder claims
    failed: dict[str, list[str]] = field(default_factory=dict)  # reason -> paths
    failed_before: int = 0  # ... of which failed in an earlier run and did not change since
    processed: int = 0  # files read this run (the progress bar's count) ...
    process_seconds: float = 0.0  # ... in this long (the bar's clock): same rate as the bar
    engine: str = ""  # what computed the image vectors (torch-fp32, onnx-int8, ...)
    bad_files: dict[str, Record] = field(default_factory=dict, repr=False)  # path -> version
    items: int = 0  # items in the collection after the run
    model: str = ""
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def failures(self) -> int:
        return sum(len(v) for v in self.failed.values())

    @property
    def readable(self) -> int:
        return self.unchanged + self.indexed + self.duplicates

    def fail(self, path: str, reason: str) -> None:
        self.failed.setdefault(reason, []).append(path)


def format_report(r: IndexReport) -> str:
    """The end-of-run summary, for people."""
    engine = f" ({r.engine})" if r.engine else ""
    lines = [
        f"Indexed {len(r.roots)} folder(s) with {r.model}{engine} in {r.seconds:.1f}s: "
        f"{r.scanned} image file(s) found.",
    ]
    if r.processed:
        rate = r.processed / r.process_seconds if r.process_seconds > 0 else 0.0
        lines.append(f"  read this run             {r.processed} in {r.process_seconds:.1f}s "
                     f"({rate:.1f} img/s, as the progress bar counts)")
    lines += [
        f"  new or changed, embedded  {r.indexed}"
        + (f", of which {r.changed} replaced an older version" if r.changed else ""),
        f"  unchanged, skipped        {r.unchanged}",
        f"  duplicates or renames     {r.duplicates} (same bytes as an indexed file; "
        "path recorded on that item)",
    ]
    if r.pruned or r.deleted_items:
        lines.append(f"  pruned                    {r.pruned} path(s) of deleted files, "
                     f"{r.deleted_items} item(s) removed")
    before = (f" ({r.failed_before} unchanged since an earlier run, not read again)"
              if r.failed_before else "")
    lines.append(f"  failed                    {r.failures}{before}")
    for reason, paths in sorted(r.failed.items(), key=lambda kv: -len(kv[1])):
        extra = len(paths) - EXAMPLES_PER_REASON
        more = f" (+{extra} more)" if extra > 0 else ""
        lines.append(f"    {len(paths):>5}  {reason}{more}")
        lines.extend(f"           {readable(p)}" for p in paths[:EXAMPLES_PER_REASON])
    if r.ignored:
        lines.append(f"  not images (by suffix)    {r.ignored}, ignored")
    if r.missing:
        lines.append(f"  {r.missing} indexed file(s) no longer exist; run again with --prune "
                     "to forget them")
    for root in r.missing_roots:
        lines.append(f"  not found: {readable(root)}")
    lines.append(f"The collection now holds {r.items} item(s).")
    return "\n".join(lines)


def _under(path: str, roots: Sequence[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def record_roots(store: Store, roots: Sequence[str]) -> None:
    """Add ``roots`` to the corpus roots document (compare-and-set, retried)."""

    def add(doc: Document | None) -> tuple[None, dict[str, Any] | None]:
        have = unpack_roots(doc.body) if doc else []
        merged = sorted(set(have) | set(roots))
        # Nested roots are redundant: the outer one already covers the inner.
        merged = [r for r in merged if not _under(r, [o for o in merged if o != r])]
        if doc is not None and merged == sorted(have):
            return None, None
        return None, pack_roots(merged)

    store.update_document(ROOTS_NAMESPACE, ROOTS_KEY, add)


def _record_failures(store: Store, found: ScanResult, report: IndexReport) -> None:
    """Remember this run's undecodable files; forget those fixed, gone or now indexed."""

    def remember(doc: Document | None) -> tuple[None, dict[str, Any] | None]:
        have = _failures(doc.body if doc else {})
        keep = {p: r for p, r in have.items() if not _under(p, found.roots)}
        keep.update(report.bad_files)
        if keep == have:
            return None, None
        return None, {"files": {readable(p): {**r, **pack(p)} for p, r in keep.items()}}

    store.update_document(ROOTS_NAMESPACE, FAILURES_KEY, remember)


def _failures(body: dict[str, Any]) -> dict[str, Record]:
    """The failures document's files, by file system path (see ``_record_failures``)."""
    files = body.get("files", {})
    recs = (_unpack_record({"path": k, **v}) for k, v in files.items())
    return {r["path"]: r for r in recs}


def _lower_priority(nice: int) -> Callable[[], None]:
    """Thread initializer: make a decoder thread yield the CPU to model inference."""

    def init() -> None:
        if nice > 0 and hasattr(os, "setpriority"):
            # On Linux a thread id is a valid PRIO_PROCESS target: this thread only.
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)

    return init


def decode_workers(settings: CorpusSettings, device: str) -> int:
    """Decoder threads: on a CPU the model wants the cores, so decoding gets a share."""
    if settings.workers > 0:
        return settings.workers
    cores = cpu_count()
    return max(1, cores if device != "cpu" else cores // 2)


def decode_in_processes(settings: CorpusSettings, device: str) -> bool:
    """Decoder processes instead of threads: with the model on a GPU the main thread
    launches kernels from Python and must not wait for the GIL behind the decoders; on a
    CPU the model is the bound and threads cost no copies."""
    if settings.decode == "auto":
        return device != "cpu"
    return settings.decode == "processes"


def _decoder_pool(processes: bool, workers: int, nice: int, reader: Reader) -> Executor:
    if processes:
        # fork where there is one (as torch's DataLoader does): a spawned process would
        # import torch again to unpickle the preprocessing, seconds per process. Forked
        # decoders use no torch op and no CUDA, so the parent's thread pools and GPU
        # context, which a fork does not carry over, are never touched. Each process gets
        # the reader once; then only file names and results travel.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        return ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context(method),
            initializer=_start_decoder_process, initargs=(reader, nice),
        )
    return ThreadPoolExecutor(workers, "sumo-decode", initializer=_lower_priority(nice))


def run_index(settings: CorpusSettings, paths: Sequence[str | os.PathLike[str]],
              prune: bool = False, embed_step: EmbedStep | None = None) -> int:
    """Index ``paths`` into the configured store; prints the summary, returns the exit code.

    Raises ``StoreUnavailable``, ``CollectionMismatch`` and ``WeightsMissing`` (the CLI
    turns them into a message and exit status 2), and ``NotFound`` when no path exists.
    """
    check_paths(paths)  # before the store is opened or created
    with open_store(settings) as store:
        report = index_into(store, settings, paths, prune=prune, embed_step=embed_step)
    print(format_report(report), flush=True)
    if report.readable == 0 and (report.failures or not report.roots):
        return 1  # nothing could be read: worth a failing exit in scripts
    return 0


def check_paths(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Fail fast when none of ``paths`` exists: a typo must not load a model or create a
    collection. (Some missing among others are reported in the summary instead.)"""
    if paths and not any(os.path.exists(os.path.expanduser(os.fspath(p))) for p in paths):
        names = ", ".join(readable(os.path.abspath(os.path.expanduser(os.fspath(p))))
                          for p in paths)
        raise NotFound(f"not found: {names}")


def _load_embedder(settings: CorpusSettings) -> Embedder:
    from indexer.embedder import load_embedder  # torch and open_clip: only when needed

    return load_embedder(settings)


def index_into(store: Store, settings: CorpusSettings, paths: Sequence[str | os.PathLike[str]],
               *, prune: bool = False, embedder: Embedder | None = None,
               progress: bool = True, embed_step: EmbedStep | None = None) -> IndexReport:
    """The indexing run against an open store (tests and benchmarks pass their own).

    ``embed_step`` replaces the local embed step (``indexer.distributed.RayEmbedStep``)."""
    t0 = time.monotonic()
    check_paths(paths)
    if embedder is None and store.spec() is None:
        # A new collection records its model for good: load the model first, so a run
        # without weights leaves no collection behind that would refuse the checkpoint or
        # tag the user passes next.
        embedder = _load_embedder(settings)
    spec = embedder.spec() if embedder is not None else model_spec(settings)
    store.ensure_collection(spec)
    report = IndexReport(model=spec.model)

    found: ScanResult = scan(paths)
    report.roots, report.missing_roots = found.roots, found.missing_roots
    report.scanned, report.ignored = len(found.files), found.ignored
    for path, why in found.errors:
        report.fail(path, why)
    if found.roots:
        record_roots(store, found.roots)

    catalog = Catalog.load(store)

    def refused(files: list[str], why: str, new: bool) -> None:
        report.indexed -= new  # an embedded item that did not make it
        for p in files:
            report.fail(p, STORE_REFUSED)

    catalog.on_refused = refused
    bad_doc = store.get_document(ROOTS_NAMESPACE, FAILURES_KEY)
    bad_before = _failures(bad_doc.body) if bad_doc else {}
    todo: list[FileStat] = []
    for stat in found.files.values():
        matching = [i for i in catalog.claims(stat.path)
                    if stat.matches(catalog.items[i].want[stat.path])]
        if len(matching) == 1:
            report.unchanged += 1
            catalog.release(stat.path, keep=matching[0])  # leftovers of a killed move
        elif not catalog.claims(stat.path) and stat.matches(bad_before.get(stat.path, {})):
            reason = str(bad_before[stat.path].get("reason", Reason.CORRUPT.value))
            report.fail(stat.path, reason)
            report.failed_before += 1
            report.bad_files[stat.path] = bad_before[stat.path]
        else:
            todo.append(stat)

    if todo and embed_step is not None:
        embed_step(store, catalog, settings, todo, report, progress)
    elif todo:
        if embedder is None:
            embedder = _load_embedder(settings)
            if embedder.spec() != spec:
                raise CollectionMismatch(f"model {embedder.name} is not {spec.model}")
        _embed_all(store, catalog, embedder, settings, todo, report, progress)
    if embedder is not None:
        report.engine = embedder.engine_name

    # Prune after adding: a renamed file's item gains the new path before losing the old.
    for path in [p for p in catalog.owners if catalog.owners[p]]:
        if path in found.files or not _under(path, found.roots) or os.path.lexists(path):
            continue
        if prune:
            report.pruned += 1
            catalog.release(path)
        else:
            report.missing += 1
    catalog.write(store, {})
    report.deleted_items = catalog.finish(store)
    _record_failures(store, found, report)
    # Always: it returns at once when nothing is due, and a store made before the index's
    # current layout (docs/store.md) is rebuilt to it here.
    store.optimize()
    store.flush()
    report.items = store.count()
    report.seconds = time.monotonic() - t0
    return report


def take_result(catalog: Catalog, report: IndexReport, res: Result) -> Decoded | None:
    """Plan the writes for one read file; returns it when its new content needs a vector.

    Shared by every embed step (local threads or processes, Ray workers), so each path counts and
    claims the same way.
    """
    had_claim = bool(catalog.claims(res.stat.path))
    if isinstance(res, Failed):
        report.fail(res.stat.path, res.reason.value)
        if res.reason in CONTENT_FAILURES:  # the old bytes are not there any more
            catalog.release(res.stat.path)
            report.bad_files[res.stat.path] = {**res.stat.record(), "reason": res.reason.value}
        return None
    if res.item_id in catalog:
        # Items are only deleted in finish(), so every Seen id lands here; so does new
        # content a parallel reader decoded twice (copies read at the same time).
        if res.stat.path in catalog.items[res.item_id].want:
            report.unchanged += 1  # touched, same bytes: just a new mtime
        else:
            report.duplicates += 1
        catalog.claim(res.item_id, res.stat)
        return None
    assert isinstance(res, Decoded)
    catalog.create(res.item_id, res.stat, res.width, res.height)
    report.indexed += 1
    report.changed += had_claim
    return res


# The embed step of a run, swappable (indexer.distributed): reads ``todo``, feeds each
# result to ``take_result`` and writes the catalog with the vectors of new content.
EmbedStep = Callable[
    [Store, Catalog, CorpusSettings, Sequence[FileStat], IndexReport, bool], None
]


def _embed_all(
    store: Store, catalog: Catalog, embedder: Embedder, settings: CorpusSettings,
    todo: Sequence[FileStat], report: IndexReport, show_progress: bool,
) -> None:
    batch: list[Decoded] = []
    waiting = 0  # files read but not yet written: the bar counts a file once it is

    def flush() -> None:
        nonlocal waiting
        vectors: dict[str, Any] = {}
        if batch:
            t = time.monotonic()
            out = embedder.encode_prepared([d.pixels for d in batch])
            report.embed_seconds += time.monotonic() - t
            vectors = {d.item_id: v for d, v in zip(batch, out, strict=True)}
            batch.clear()
        catalog.write(store, vectors)
        bar.update(waiting)
        waiting = 0

    processes = decode_in_processes(settings, embedder.device) and (
        embedder.pil_prepare is not None)
    prepare = embedder.pil_prepare if processes else embedder.prepare
    assert prepare is not None
    # Workers skip decoding bytes the store already has (dict lookups are thread-safe;
    # processes get a snapshot of the ids).
    known = KnownIds(catalog.items) if processes else catalog.__contains__
    reader = Reader(prepare, embedder.image_size, known)
    workers = decode_workers(settings, embedder.device)
    ahead = max(2 * settings.batch_size, 4 * workers)
    # Logged before the bar exists, so it does not land inside the bar's line.
    log.info("indexing %d file(s) with %s on %s (%d decoder %s, batch %d)",
             len(todo), embedder.name, embedder.engine_name, workers,
             "process(es)" if processes else "thread(s)", settings.batch_size)
    bar = Progress(len(todo), enabled=show_progress)
    # On a CPU the model is the bottleneck: decoders run at a lower priority and fill the
    # gaps, instead of stalling the model's threads (whose work splits evenly per op).
    nice = DECODER_NICE if embedder.device == "cpu" else 0
    read: Callable[[FileStat], Result] = _read_in_process if processes else reader
    with warnings.catch_warnings(), _decoder_pool(processes, workers, nice, reader) as pool:
        # Oversized images are refused explicitly (images.decode); don't print Pillow's
        # warning for each. Set here, once, before the decoder threads start.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        # Python 3.12+ warns about any fork in a process with threads; see _decoder_pool.
        warnings.filterwarnings("ignore", ".*fork.*", DeprecationWarning)
        for res in _ordered(pool, read, todo, ahead):
            new = take_result(catalog, report, res)
            if new is not None:
                batch.append(new)
            waiting += 1
            if not batch and not catalog.dirty:
                bar.update(waiting)  # nothing to write for it (a failure): done now
                waiting = 0
            if len(batch) >= settings.batch_size or len(catalog.dirty) >= MAX_PENDING_UPDATES:
                flush()
        flush()
    bar.close()
    report.processed, report.process_seconds = bar.done, bar.elapsed()


def index_paths(settings: CorpusSettings, paths: Sequence[str | Path], **kwargs: Any
                ) -> IndexReport:
    """Convenience for Python callers: open the store, index, close, return the report."""
    with open_store(settings) as store:
        return index_into(store, settings, paths, **kwargs)
