"""``sumo serve``'s start-up: bad ports, a port in use, an empty store, the collection's own
model. Each case fails or warns before anything heavy is loaded, with a message that says
what to do."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import numpy as np
import pytest
from api_helpers import make_settings
from fastapi.testclient import TestClient

from indexer.embedder import WeightsMissing, model_spec
from indexer.embedder.registry import settings_for
from indexer.settings import CorpusSettings
from indexer.store.base import CollectionSpec, Item
from indexer.store.edge import EdgeStore
from recommender.api.app import create_app
from recommender.api.schemas import ModelStatus
from sumo.cli import main


@pytest.mark.parametrize("port", ["99999", "0", "-1", "http"])
def test_a_port_outside_1_to_65535_is_refused(
    port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--data", str(tmp_path / "data"), "--port", port])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--port" in err and ("1 to 65535" in err or "not a port number" in err)
    assert not (tmp_path / "data").exists()


def test_a_sumo_port_out_of_range_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUMO_PORT", "99999")
    assert main(["serve", "--data", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err
    assert "SUMO_PORT" in err and "65535" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()


def test_a_port_in_use_fails_at_once_before_the_store_or_model_load(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--data", str(tmp_path / "data"), "--port", str(port)])
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "another --port" in err
    assert "Errno" not in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()  # nothing opened, let alone a model loaded


def test_an_empty_store_warns_that_nothing_is_indexed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EdgeStore(tmp_path / "data") as store, caplog.at_level(logging.WARNING), \
            TestClient(create_app(make_settings(tmp_path), store=store)):
        pass
    assert any("nothing is indexed" in r.getMessage() and "sumo index" in r.getMessage()
               for r in caplog.records)


def test_a_store_with_items_starts_without_that_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EdgeStore(tmp_path / "data") as store:
        store.ensure_collection(CollectionSpec(dim=4, model="import:test"))
        store.upsert([Item("a", np.ones(4, np.float32))])
        with caplog.at_level(logging.WARNING), \
                TestClient(create_app(make_settings(tmp_path), store=store)):
            pass
    assert not any("nothing is indexed" in r.getMessage() for r in caplog.records)


def test_serving_loads_the_model_the_collection_records(tmp_path: Path) -> None:
    """A collection built with random weights is served with them, although the settings
    name the default (published) weights, which are not on this machine."""
    tiny = model_spec(CorpusSettings(model="sumo-tiny", pretrained="none"))
    settings = make_settings(tmp_path, device="cpu")
    assert (settings.model, settings.pretrained) != ("sumo-tiny", "none")
    with EdgeStore(tmp_path / "data") as store:
        store.ensure_collection(tiny)
        store.upsert([Item("a", np.ones(tiny.dim, np.float32))])
        with TestClient(create_app(settings, store=store)) as client:
            text = client.app.state.sumo.text  # type: ignore[attr-defined]
            assert text.status is ModelStatus.LOADED, text.reason
            assert text.embedder.name == "sumo-tiny/none"
            hits = client.get("/v1/search", params={"q": "a cat", "limit": 1}).json()
    assert [h["id"] for h in hits["items"]] == ["a"]


def test_settings_for_reads_the_recorded_model(tmp_path: Path) -> None:
    base = CorpusSettings(model="ViT-B-32-256", pretrained="datacomp_s34b_b86k")
    got = settings_for(CollectionSpec(512, "ViT-B-32/laion2b_s34b_b79k"), base)
    assert (got.model, got.pretrained) == ("ViT-B-32", "laion2b_s34b_b79k")
    assert settings_for(CollectionSpec(8, "import:clip-retrieval"), base) is base
    with pytest.raises(WeightsMissing, match="--pretrained"):
        settings_for(CollectionSpec(64, "sumo-tiny/file:0123456789abcdef"), base)
