"""``sumo index``: counts, incremental re-runs, duplicates, changes, renames, prune and bad
files, on both real backends (Edge folder, qdrant-client local mode)."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.embedder import Embedder
from indexer.errors import CollectionMismatch, WeightsMissing
from indexer.images import Reason, open_image
from indexer.ingest import ROOTS_KEY, ROOTS_NAMESPACE, IndexReport, index_into, run_index
from indexer.progress import Progress
from indexer.settings import CorpusSettings
from indexer.store import Store
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore

MakeImages = Callable[..., list[Path]]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:32]


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = EdgeStore(tmp_path / "edge") if request.param == "edge" else ServerStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def index(store: Store, tiny_settings: CorpusSettings, tiny_embedder: Embedder
          ) -> Callable[..., IndexReport]:
    def run(*paths: Path, prune: bool = False) -> IndexReport:
        return index_into(store, tiny_settings, paths, prune=prune, embedder=tiny_embedder,
                          progress=False)
    return run


def by_path(store: Store) -> dict[str, str]:
    """path -> item id, asserting that every path belongs to exactly one item."""
    owner: dict[str, str] = {}
    for it in store.scroll():
        assert it.payload["paths"] == [f["path"] for f in it.payload["files"]]
        assert it.payload["paths"], f"item {it.id} has no paths"
        for p in it.payload["paths"]:
            assert p not in owner, f"{p} claimed by {owner[p]} and {it.id}"
            owner[p] = it.id
    return owner


def write_bad_files(folder: Path, jpeg: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture")
    data = jpeg.read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    Image.new("RGB", (400, 400)).save(folder / "bomb.png")  # over the patched pixel limit


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_mixed_folder_counts_payloads_and_rerun(
    index: Callable[..., IndexReport], store: Store, tmp_path: Path, make_images: MakeImages,
    tiny_embedder: Embedder, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
    root = tmp_path / "photos"
    good = make_images(root, 10) + make_images(root / "sub" / "deeper", 4, start=100)
    rgba = root / "alpha.png"
    Image.new("RGBA", (64, 48), (10, 200, 30, 128)).save(rgba)
    good.append(rgba)
    shutil.copy(good[0], root / "sub" / "copy_of_first.jpg")  # byte-identical duplicate
    make_images(root / ".thumbs", 2, start=200)  # hidden folder: skipped
    (root / "readme.txt").write_text("sidecar")
    write_bad_files(root / "bad", good[0])

    r = index(root)
    assert (r.indexed, r.duplicates, r.unchanged, r.ignored) == (15, 1, 0, 1)
    assert {k: len(v) for k, v in r.failed.items()} == {
        Reason.EMPTY.value: 1, Reason.NOT_IMAGE.value: 1, Reason.CORRUPT.value: 1,
        Reason.BOMB.value: 1,
    }
    assert r.items == store.count() == 15
    owner = by_path(store)
    assert set(owner) == {str(p) for p in good} | {str(root / "sub" / "copy_of_first.jpg")}
    for p in good:
        assert owner[str(p)] == sha(p)  # item id = content hash
    first = store.retrieve([sha(good[0])])[0].payload
    assert sorted(first["paths"]) == sorted([str(good[0]), str(root / "sub" / "copy_of_first.jpg")])
    assert (first["width"], first["height"]) == (160, 120)
    assert {f["size"] for f in first["files"]} == {good[0].stat().st_size}
    doc = store.get_document(ROOTS_NAMESPACE, ROOTS_KEY)
    assert doc is not None and doc.body == {"roots": [str(root)]}

    # The stored vector is the model's vector of the decoded file.
    item = store.retrieve([sha(good[3])], with_vectors=True)[0]
    assert item.vector is not None
    expect = tiny_embedder.encode_images([open_image(good[3])])[0]
    assert float(item.vector @ expect) > 0.9999

    # A second run reads nothing: unchanged files and known-bad files are both skipped.
    again = index(root)
    assert (again.indexed, again.duplicates, again.unchanged) == (0, 0, 16)
    assert again.failures == again.failed_before == 4 and store.count() == 15


def test_changes_renames_and_prune(
    index: Callable[..., IndexReport], store: Store, tmp_path: Path, make_images: MakeImages,
    textured: Callable[..., Image.Image],
) -> None:
    root = tmp_path / "photos"
    imgs = make_images(root, 6, fmt="JPEG")
    shutil.copy(imgs[1], root / "twin.jpg")
    index(root)
    old0, old1, old2 = sha(imgs[0]), sha(imgs[1]), sha(imgs[2])

    textured(500).save(imgs[0], "JPEG")  # changed content: new item, old one gone
    textured(501).save(imgs[1], "JPEG")  # changed, but its old bytes live on in twin.jpg
    os.utime(imgs[3], ns=(1, 1))  # touched only: re-hashed, still the same item
    imgs[2].rename(root / "renamed.jpg")  # moved: keeps its id, no re-embedding
    imgs[4].unlink()  # deleted: stays until --prune

    r = index(root)
    assert (r.indexed, r.changed, r.duplicates, r.missing, r.pruned) == (2, 2, 1, 2, 0)
    assert r.unchanged == 3  # twin, imgs[5], and imgs[3] (touched: re-hashed, same bytes)
    owner = by_path(store)
    assert owner[str(imgs[0])] == sha(imgs[0]) != old0
    assert store.retrieve([old0]) == []  # no path left: deleted
    assert owner[str(root / "twin.jpg")] == old1 and owner[str(imgs[1])] == sha(imgs[1])
    assert owner[str(root / "renamed.jpg")] == old2
    assert str(imgs[2]) in owner and str(imgs[4]) in owner  # gone, but not pruned yet

    p = index(root, prune=True)
    assert (p.indexed, p.pruned, p.deleted_items, p.missing) == (0, 2, 1, 0)
    owner = by_path(store)
    assert str(imgs[2]) not in owner and str(imgs[4]) not in owner
    assert owner[str(root / "renamed.jpg")] == old2
    assert store.count() == len(set(owner.values())) == 6

    # A file that turns into garbage loses its claim on the old item (that file is gone).
    (root / "renamed.jpg").write_bytes(b"garbage")
    g = index(root)
    assert g.failed == {Reason.NOT_IMAGE.value: [str(root / "renamed.jpg")]}
    assert store.retrieve([old2]) == [] and store.count() == 5


def test_same_store_other_model_is_refused(
    index: Callable[..., IndexReport], store: Store, tmp_path: Path, make_images: MakeImages,
    tiny_settings: CorpusSettings,
) -> None:
    index(*make_images(tmp_path / "p", 2))
    other = tiny_settings.model_copy(update={"model": "ViT-B-32"})
    with pytest.raises(CollectionMismatch, match="sumo-tiny/none"):
        index_into(store, other, [tmp_path / "p"], progress=False)


def test_a_run_without_weights_leaves_no_collection_behind(
    tiny_settings: CorpusSettings, tmp_path: Path, make_images: MakeImages,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The README's first command on a machine without the default weights: the published
    # tag is known (its spec is cheap) but the download fails.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    make_images(tmp_path / "p", 2)
    missing = tiny_settings.model_copy(
        update={"model": "ViT-B-32", "pretrained": "laion2b_s34b_b79k"})
    with pytest.raises(WeightsMissing):
        run_index(missing, [tmp_path / "p"])
    with EdgeStore(tiny_settings.data) as s:
        assert s.spec() is None
    # So the next run, with a model that does load, is not refused as "another model".
    assert run_index(tiny_settings, [tmp_path / "p"]) == 0


def test_run_index_exit_codes_and_summary(
    tiny_settings: CorpusSettings, tmp_path: Path, make_images: MakeImages,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = make_images(tmp_path / "ok", 3)
    assert run_index(tiny_settings, [tmp_path / "ok"]) == 0
    out = capsys.readouterr().out
    assert "new or changed, embedded  3" in out and "now holds 3 item(s)" in out

    write_bad_files(tmp_path / "bad", good[0])
    (tmp_path / "bad" / "bomb.png").unlink()
    assert run_index(tiny_settings, [tmp_path / "bad"]) == 1  # nothing could be read
    out = capsys.readouterr().out
    assert "failed                    3" in out and str(tmp_path / "bad" / "cut.jpg") in out
    assert run_index(tiny_settings, [tmp_path / "ok", tmp_path / "nowhere"]) == 0
    assert "not found: " in capsys.readouterr().out  # one missing among others: reported
    (tmp_path / "empty").mkdir()
    assert run_index(tiny_settings, [tmp_path / "empty"]) == 0  # an empty folder is fine


def test_progress_plain_lines_and_tty_bar(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="indexer.ingest"):
        bar = Progress(20, tty=False, interval_s=1e9)
        for _ in range(20):
            bar.update()
        bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[-1].startswith("indexing: 20/20 (100%)")
    assert "img/s" in lines[0] and "ETA" in lines[0]
    stream = io.StringIO()
    bar = Progress(5, tty=True, stream=stream)
    bar.update(5)
    bar.close()
    assert "5/5" in stream.getvalue() and "img/s" in stream.getvalue()


def test_indexed_vectors_match_between_backends(
    tmp_path: Path, make_images: MakeImages, tiny_settings: CorpusSettings,
    tiny_embedder: Embedder,
) -> None:
    root = tmp_path / "p"
    make_images(root, 12)
    vecs = []
    for s in (EdgeStore(tmp_path / "e"), ServerStore(":memory:")):
        with s:
            index_into(s, tiny_settings, [root], embedder=tiny_embedder, progress=False)
            items = sorted(s.scroll(with_vectors=True), key=lambda it: it.id)
            vecs.append(np.stack([it.vector for it in items if it.vector is not None]))
            assert len(items) == 12
    np.testing.assert_allclose(vecs[0], vecs[1], atol=1e-6)
