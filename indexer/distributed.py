"""``sumo index --ray``: embed on a Ray cluster, write from this process.

The run is the local one (``indexer.ingest.index_into``: check the collection, scan, skip
unchanged files, plan with the catalog, prune, record failures) with one step swapped: the
files to read go to a Ray Data pipeline whose actor pool reads, hashes, decodes and embeds
them (one model per actor: per GPU, or per share of the CPUs). The embedded batches stream
back to this process, which writes them through the same catalog, in the same crash-safe
order and with the same content-hash ids as a local run. So:

* the store is only ever opened here: an embedded folder works as well as a server URL,
  and workers need no store credentials;
* a killed worker is replaced (actor restarts, task retries) and its batch redone; since
  every write is idempotent, a killed driver is finished by the next run, as locally;
* every node must see the files at the same paths (a shared or synced file system).

Paths travel as bytes, so names that are not UTF-8 reach the workers intact.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from PIL import Image

from indexer.errors import SumoError
from indexer.images import Reason
from indexer.ingest import (
    Catalog,
    Decoded,
    Failed,
    IndexReport,
    KnownIds,
    Reader,
    Result,
    Seen,
    take_result,
)
from indexer.progress import Progress
from indexer.scan import FileStat
from indexer.settings import CorpusSettings, EngineName
from indexer.store import Store

if TYPE_CHECKING:
    from indexer.embedder import Embedder

try:
    import ray
    import ray.data

    AVAILABLE = True
except ImportError:  # the optional extra is not installed
    AVAILABLE = False

INSTALL_HINT = "sumo index --ray needs Ray Data: pip install 'sumo[ray]'"
log = logging.getLogger(__name__)

BATCHES_PER_BLOCK = 4  # a block of the file list holds this many model batches
# Item ids shipped to every worker so that copies and renames of known content are not
# decoded and embedded again. Past this many (~100 B each, per worker) they are not sent:
# workers then embed such files too, and the driver still records them as duplicates.
KNOWN_IDS_LIMIT = 2_000_000
KINDS = ("failed", "seen", "decoded")


class RayUnavailable(SumoError):
    """Ray is not installed, or the cluster cannot be reached."""


def is_address(value: str) -> bool:
    """Whether ``sumo index --ray VALUE`` names a cluster rather than the first path."""
    if os.path.exists(value):
        return False
    return value in ("auto", "local") or value.startswith("ray://") or ":" in value


@dataclass
class RayEmbedStep:
    """The embed step of ``index_into`` on Ray (``index_into(..., embed_step=RayEmbedStep(...))``).

    ``address`` as ``ray.init`` takes it: None joins the cluster running here (``RAY_ADDRESS``
    or the last ``ray start``) or starts one; ``auto`` joins it or fails; ``local`` always
    starts one; ``HOST:PORT`` or ``ray://HOST:PORT`` a remote head. When Ray is already
    initialised in this process it is used as it is.
    ``workers``: actors (models); default one per GPU, else one per CPU core.
    """

    address: str | None = None
    workers: int = 0
    stats: dict[str, float] | None = None  # filled per run: workers, cpus per worker...

    def __post_init__(self) -> None:
        # Here, not when it runs: the CLI makes the step before anything is loaded or created.
        if not AVAILABLE:
            raise RayUnavailable(INSTALL_HINT)

    def __call__(self, store: Store, catalog: Catalog, settings: CorpusSettings,
                 todo: Sequence[FileStat], report: IndexReport, show_progress: bool) -> None:
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, logging_level=logging.WARNING,
                         log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise RayUnavailable(f"cannot reach the Ray cluster {self.address}: {exc}"
                                     ) from exc
        try:
            self._run(store, catalog, settings, todo, report, show_progress)
        except ray.exceptions.RayError as exc:
            # Ray's error text carries the remote traceback; its last line is the cause.
            lines = str(exc).strip().splitlines()
            raise RayUnavailable(f"the Ray workers failed: {lines[-1] if lines else exc!r}"
                                 ) from exc
        finally:
            if started:
                ray.shutdown()

    def _run(self, store: Store, catalog: Catalog, settings: CorpusSettings,
             todo: Sequence[FileStat], report: IndexReport, show_progress: bool) -> None:
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        use_gpu = gpus > 0 and settings.device != "cpu"
        workers = self.workers or (gpus if use_gpu else cpus)
        if use_gpu:
            workers = min(workers, gpus)
        # Each actor gets an equal share of the CPUs: its torch threads on a CPU model, its
        # decoder threads on a GPU one.
        cpus_each = max(1, cpus // workers)
        self.stats = {"workers": workers, "cpus_per_worker": cpus_each, "gpus": gpus}
        batch = settings.batch_size
        blocks = max(1, min(len(todo), max(2 * workers,
                                           math.ceil(len(todo) / (batch * BATCHES_PER_BLOCK)))))
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # ours below, the same on every path
        ctx.enable_operator_progress_bars = False
        ctx.print_on_execution_start = False
        # Ray Data's per-run chatter ("progress bars disabled", "execution finished").
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        rows = [{"path": os.fsencode(s.path), "size": s.size, "mtime_ns": s.mtime_ns}
                for s in todo]
        known = ray.put(KnownIds(catalog.items if len(catalog.items) <= KNOWN_IDS_LIMIT
                                 else ()))  # ids whose bytes need no decoding
        ds = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            EmbedWorker,
            # Only what the model needs: no store address or key leaves this process.
            fn_constructor_kwargs={"model": settings.model, "pretrained": settings.pretrained,
                                   "engine": settings.engine, "known": [known],
                                   "threads": cpus_each,
                                   "device": "cuda" if use_gpu else "cpu"},
            batch_size=batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus_each, num_gpus=1 if use_gpu else 0,
            # Ray Data restarts a killed actor and retries its batch (its defaults
            # max_restarts=-1, max_task_retries=-1; tests/indexer/test_distributed.py).
        )
        bar = Progress(len(todo), enabled=show_progress)
        log.info("indexing %d file(s) on Ray: %d worker(s) x %d CPU(s)%s, batch %d",
                 len(todo), workers, cpus_each, " + 1 GPU" if use_gpu else "", batch)
        t = time.monotonic()
        for out in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=2):
            vectors: dict[str, Any] = {}
            for res, vector in _results(out):
                new = take_result(catalog, report, res)
                if new is not None:
                    vectors[new.item_id] = vector
            catalog.write(store, vectors)
            bar.update(len(out["path"]))
        self.stats["pipeline_s"] = time.monotonic() - t
        report.embed_seconds += self.stats["pipeline_s"]  # the whole pipeline's wall time
        bar.close()
        report.processed, report.process_seconds = bar.done, bar.elapsed()


def _results(out: dict[str, np.ndarray]) -> list[tuple[Result, Any]]:
    """Rows of a worker's output batch back as the local path's results (+ vector)."""
    res: list[tuple[Result, Any]] = []
    for n in range(len(out["path"])):
        stat = FileStat(os.fsdecode(bytes(out["path"][n])), int(out["size"][n]),
                        int(out["mtime_ns"][n]))
        kind, item_id = str(out["kind"][n]), str(out["item_id"][n])
        if kind == "failed":
            res.append((Failed(stat, Reason(str(out["reason"][n])), str(out["detail"][n])),
                        None))
        elif kind == "seen":
            res.append((Seen(stat, item_id), None))
        else:
            pixels = np.empty(0, np.uint8)  # not shipped back: the vector is
            res.append((Decoded(stat, item_id, pixels, int(out["width"][n]),
                                int(out["height"][n])), out["vector"][n]))
    return res


class EmbedWorker:
    """A Ray actor: one model; reads, hashes, decodes (in threads) and embeds batches."""

    def __init__(self, model: str, pretrained: str, engine: EngineName, known: list[Any],
                 threads: int, device: str) -> None:
        import torch

        from indexer.embedder import load_embedder

        cfg = CorpusSettings(model=model, pretrained=pretrained, engine=engine, device=device,
                             qdrant_url=None)
        self.embedder: Embedder = load_embedder(cfg)
        if device == "cpu":
            torch.set_num_threads(threads)  # this actor's share, not the whole machine
        self.reader = Reader(self.embedder.prepare, self.embedder.image_size, ray.get(known[0]))
        self.pool = ThreadPoolExecutor(threads, "sumo-decode")
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        stats = [FileStat(os.fsdecode(bytes(p)), int(s), int(m))
                 for p, s, m in zip(batch["path"], batch["size"], batch["mtime_ns"], strict=True)]
        results = list(self.pool.map(self.reader, stats))
        rows = [n for n, r in enumerate(results) if isinstance(r, Decoded)]
        dim = self.embedder.dim
        vectors = np.zeros((len(results), dim), np.float32)
        if rows:
            vectors[rows] = self.embedder.encode_prepared(
                [cast(Decoded, results[n]).pixels for n in rows])
        return {
            "path": np.array([os.fsencode(r.stat.path) for r in results], dtype=object),
            "size": np.array([r.stat.size for r in results], np.int64),
            "mtime_ns": np.array([r.stat.mtime_ns for r in results], np.int64),
            "kind": np.array([KINDS[_kind(r)] for r in results]),
            "item_id": np.array([getattr(r, "item_id", "") for r in results]),
            "reason": np.array([r.reason.value if isinstance(r, Failed) else ""
                                for r in results]),
            "detail": np.array([r.detail if isinstance(r, Failed) else "" for r in results]),
            "width": np.array([getattr(r, "width", 0) for r in results], np.int64),
            "height": np.array([getattr(r, "height", 0) for r in results], np.int64),
            "vector": vectors,
        }


def _kind(r: Result) -> int:
    return 0 if isinstance(r, Failed) else 1 if isinstance(r, Seen) else 2
