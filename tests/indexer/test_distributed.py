"""``sumo index --ray``: on a local Ray instance (2 CPUs), the same items, paths and vectors
as the local path, incremental re-runs, and a complete result despite a killed worker."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from indexer.embedder import Embedder
from indexer.ingest import IndexReport, index_into
from indexer.paths import item_paths
from indexer.settings import CorpusSettings
from indexer.store import Store
from indexer.store.server import ServerStore

ray = pytest.importorskip("ray")
from indexer.distributed import RayEmbedStep, is_address  # noqa: E402

MakeImages = Callable[..., list[Path]]
WORKER_TITLE = b"ray::MapWorker"  # the process title of a Ray Data actor


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    """The tiny model on torch fp32. The int8 engine quantizes each batch's activations
    with one scale for the whole batch, so its vectors move (at cosine ~0.9996) with the
    batch they were computed in, and the two paths batch differently: equality is checked
    on the exact engine (tests/indexer/test_engine.py checks int8 against it)."""
    from indexer.embedder import load_embedder

    return load_embedder(CorpusSettings(model="sumo-tiny", pretrained="none", qdrant_url=None,
                                        device="cpu", engine="torch"))


@pytest.fixture
def torch_settings(tiny_settings: CorpusSettings) -> CorpusSettings:
    return tiny_settings.model_copy(update={"engine": "torch"})


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def snapshot(store: Store) -> dict[str, tuple[list[str], dict[str, object], np.ndarray]]:
    """item id -> (paths, payload without paths, vector)."""
    out = {}
    for it in store.scroll(with_payload=True, with_vectors=True):
        rest = {k: v for k, v in it.payload.items() if k not in ("paths", "files")}
        assert it.vector is not None
        out[it.id] = (sorted(item_paths(it.payload)), rest, np.asarray(it.vector))
    return out


def assert_same(a: Store, b: Store) -> None:
    sa, sb = snapshot(a), snapshot(b)
    assert set(sa) == set(sb)
    for k in sa:
        assert sa[k][:2] == sb[k][:2], k
        # Same model and pixels; only the batch composition differs.
        np.testing.assert_allclose(sa[k][2], sb[k][2], atol=1e-5)


def counts(r: IndexReport) -> tuple[int, ...]:
    return (r.scanned, r.indexed, r.unchanged, r.duplicates, r.failures, r.items)


def build_folder(root: Path, make_images: MakeImages, n: int) -> list[Path]:
    good = make_images(root, n) + make_images(root / "sub", 3, start=1000)
    shutil.copy(good[0], root / "sub" / "copy.jpg")
    (root / "broken.jpg").write_bytes(b"not an image")
    shutil.copy(good[1], root / os.fsdecode(b"caf\xe9.jpg"))  # a name that is not UTF-8
    return good


@pytest.mark.slow
def test_ray_indexes_like_the_local_path(
    local_ray: None, tmp_path: Path, make_images: MakeImages, torch_settings: CorpusSettings,
    torch_embedder: Embedder, textured: Callable[..., Image.Image],
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "photos"
    good = build_folder(root, make_images, 20)
    step = RayEmbedStep(workers=2)
    with ServerStore(":memory:") as local, ServerStore(":memory:") as dist:
        def both() -> tuple[IndexReport, IndexReport]:
            a = index_into(local, torch_settings, [root], embedder=torch_embedder, progress=False)
            with caplog.at_level(logging.INFO, logger="indexer.ingest"):
                b = index_into(dist, torch_settings, [root], embedder=torch_embedder,
                               progress=True, embed_step=step)
            return a, b

        a, b = both()
        # The same progress lines as a local run (plain lines: not a terminal).
        assert "indexing: 26/26 (100%)" in caplog.text
        assert counts(a) == counts(b) == (26, 23, 0, 2, 1, 23)
        assert a.failed == b.failed
        assert step.stats is not None and step.stats["workers"] == 2
        assert_same(local, dist)

        # Incremental: a changed file, a rename (its bytes known: not decoded again) and
        # an untouched rest.
        textured(777).save(good[2], "JPEG")
        good[3].rename(root / "moved.jpg")
        a, b = both()
        assert counts(a) == counts(b)
        assert (b.indexed, b.duplicates, b.unchanged) == (1, 1, 23)
        assert_same(local, dist)


class CountingStore(ServerStore):
    """qdrant-client local mode that counts item writes (to time the kill)."""

    upserts = 0

    def upsert(self, items: Any) -> None:  # type: ignore[override]
        super().upsert(items)
        self.upserts += 1


def _kill_a_worker(store: CountingStore, killed: list[tuple[int, int]],
                   stop: threading.Event) -> None:
    """Once batches are being written, SIGKILL one Ray Data actor process."""
    while not stop.is_set() and store.upserts == 0:
        time.sleep(0.02)
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                title = f.read()
        except OSError:
            continue
        if title.startswith(WORKER_TITLE) and not stop.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append((pid, store.upserts))
                return


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_the_result_is_complete(
    local_ray: None, tmp_path: Path, make_images: MakeImages, torch_settings: CorpusSettings,
    torch_embedder: Embedder,
) -> None:
    root = tmp_path / "photos"
    build_folder(root, make_images, 120)
    settings = torch_settings.model_copy(update={"batch_size": 4})  # many small batches
    killed: list[tuple[int, int]] = []
    stop = threading.Event()
    with ServerStore(":memory:") as local, CountingStore(":memory:") as dist:
        a = index_into(local, settings, [root], embedder=torch_embedder, progress=False)
        killer = threading.Thread(target=_kill_a_worker, args=(dist, killed, stop), daemon=True)
        killer.start()
        try:
            b = index_into(dist, settings, [root], embedder=torch_embedder, progress=False,
                           embed_step=RayEmbedStep(workers=2))
        finally:
            stop.set()
            killer.join(timeout=10)
        assert killed, "no Ray worker process was found to kill"
        assert dist.upserts > killed[0][1]  # the run went on writing after the kill
        assert counts(a) == counts(b) == (126, 123, 0, 2, 1, 123)
        assert_same(local, dist)


def test_ray_address_or_first_path(tmp_path: Path) -> None:
    assert is_address("auto") and is_address("10.0.0.5:6379") and is_address("ray://h:10001")
    assert not is_address(str(tmp_path)) and not is_address("photos")
