"""A store that refuses one item's write: that file's failure, never the run's."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from indexer.embedder import Embedder
from indexer.errors import StoreUnavailable
from indexer.ingest import STORE_REFUSED, index_into
from indexer.settings import CorpusSettings
from indexer.store import Item
from indexer.store.server import ServerStore

MakeImages = Callable[..., list[Path]]


class PickyStore(ServerStore):
    """qdrant-client local mode that rejects any write naming a path with ``POISON``."""

    down = False

    def upsert(self, items: Any) -> None:  # type: ignore[override]
        if self.down:
            raise StoreUnavailable("server went away")
        for it in items:
            assert isinstance(it, Item)
            if any("POISON" in p for p in it.payload.get("paths", [])):
                raise ValueError("payload rejected")
        super().upsert(items)

    def set_payload(self, item_id: str, payload: dict[str, Any]) -> None:
        if any("POISON" in p for p in payload.get("paths", [])):
            raise ValueError("payload rejected")
        super().set_payload(item_id, payload)


def test_a_refused_item_fails_alone_and_is_retried_next_run(
    tmp_path: Path, make_images: MakeImages, tiny_settings: CorpusSettings,
    tiny_embedder: Embedder, textured: Callable[..., Any],
) -> None:
    root = tmp_path / "p"
    make_images(root, 10)
    textured(4242).save(root / "POISON.jpg", "JPEG")
    with PickyStore(":memory:") as store:
        def run() -> Any:
            return index_into(store, tiny_settings, [root], embedder=tiny_embedder,
                              progress=False)

        r = run()
        assert r.failed == {STORE_REFUSED: [str(root / "POISON.jpg")]}
        assert (r.indexed, r.items) == (10, 10)  # its batch neighbours were written
        again = run()  # not remembered as bad content: tried again, refused again
        assert (again.indexed, again.unchanged, again.failures) == (0, 10, 1)

        # A copy of known content only needs its path added to the item: refused too, alone.
        shutil.copy(root / "img_00003.png", root / "POISON_copy.png")
        copy = run()
        assert sorted(copy.failed[STORE_REFUSED]) == [
            str(root / "POISON.jpg"), str(root / "POISON_copy.png")]
        assert all("POISON" not in p for it in store.scroll() for p in it.payload["paths"])
        assert (copy.unchanged, copy.items) == (10, 10)

        store.down = True  # a store that is down still stops the run
        textured(4243).save(root / "new.jpg", "JPEG")
        with pytest.raises(StoreUnavailable):
            run()
