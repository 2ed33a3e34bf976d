"""File names that are not UTF-8: indexed, incremental on re-runs, reported readably and
served by the image route (the stored form is lossless)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.embedder import Embedder
from indexer.ingest import ROOTS_KEY, ROOTS_NAMESPACE, IndexReport, index_into, run_index
from indexer.paths import RAW_KEY, item_paths, pack, readable, unpack, unpack_roots
from indexer.settings import CorpusSettings
from indexer.store import Store
from indexer.store.edge import EdgeStore
from indexer.store.server import ServerStore
from recommender.api.app import create_app
from recommender.settings import Settings

MakeImages = Callable[..., list[Path]]
CAFE = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes: not UTF-8
FOLDER = os.fsdecode(b"d\xfcr")


def test_pack_is_lossless_and_readable() -> None:
    for name in ("/a/plain.jpg", "/a/ünïcode ✓.jpg", "/a/" + CAFE, "/a/back\\slash.jpg"):
        rec = pack(name)
        assert unpack(rec) == name
        rec["path"].encode("utf-8")  # always storable as JSON text
        assert (RAW_KEY in rec) == (name == "/a/" + CAFE)
    assert readable("/a/" + CAFE) == "/a/caf\\xe9.jpg"


@pytest.fixture(params=["edge", "server"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = EdgeStore(tmp_path / "edge") if request.param == "edge" else ServerStore(":memory:")
    yield s
    s.close()


def test_non_utf8_names_are_indexed_incrementally_and_served(
    store: Store, tmp_path: Path, make_images: MakeImages, tiny_settings: CorpusSettings,
    tiny_embedder: Embedder, textured: Callable[..., Image.Image],
) -> None:
    root = Path(os.fsdecode(os.fsencode(tmp_path)) + "/" + FOLDER)  # the root too
    good = make_images(root, 12)
    textured(900).save(root / CAFE, "JPEG")
    (root / os.fsdecode(b"bad\xff.jpg")).write_bytes(b"not a picture")

    def index() -> IndexReport:
        return index_into(store, tiny_settings, [root], embedder=tiny_embedder, progress=False)

    r = index()
    assert (r.indexed, r.failures, r.items) == (13, 1, 13)  # the bad file is its own failure
    owners = {p: it.id for it in store.scroll() for p in item_paths(it.payload)}
    assert set(owners) == {str(p) for p in good} | {str(root / CAFE)}
    item = store.retrieve([owners[str(root / CAFE)]])[0]
    assert item.payload["paths"] == [readable(str(root / CAFE))]
    assert item.payload["paths"][0].endswith("d\\xfcr/caf\\xe9.jpg")
    roots = store.get_document(ROOTS_NAMESPACE, ROOTS_KEY)
    assert roots is not None and unpack_roots(roots.body) == [str(root)]

    again = index()  # incremental: nothing read, the bad file remembered as bad
    assert (again.indexed, again.unchanged, again.failed_before) == (0, 13, 1)
    (root / CAFE).rename(root / os.fsdecode(b"caf\xe9 copy.jpg"))
    moved = index()  # a rename keeps the item and is not re-embedded
    assert (moved.indexed, moved.duplicates) == (0, 1)

    settings = Settings(data=tmp_path / "app", qdrant_url=None, api_key=None, admin_key=None)
    with TestClient(create_app(settings, store=store)) as client:
        resp = client.get(f"/v1/items/{owners[str(root / CAFE)]}/image", params={"size": 128})
    assert resp.status_code == 200 and resp.headers["content-type"] == "image/jpeg"


def test_summary_prints_non_utf8_names_readably(
    tiny_settings: CorpusSettings, tmp_path: Path, make_images: MakeImages,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_images(tmp_path / "p", 2)
    (tmp_path / "p" / os.fsdecode(b"bad\xff.jpg")).write_bytes(b"")
    assert run_index(tiny_settings, [tmp_path / "p"]) == 0
    out = capsys.readouterr().out
    assert "bad\\xff.jpg" in out and "now holds 2 item(s)" in out
