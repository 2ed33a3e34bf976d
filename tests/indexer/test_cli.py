"""``sumo`` command line: options before or after the command, fail-fast on missing paths,
and no open_clip INFO chatter."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sumo.cli import build_parser, main, settings_from


@pytest.mark.parametrize("argv", [
    ["--qdrant-url", "http://db:6333", "--collection", "c", "index", "p"],
    ["index", "--qdrant-url", "http://db:6333", "--collection", "c", "p"],
    ["--qdrant-url", "http://other:1", "index", "--qdrant-url", "http://db:6333",
     "--collection", "c", "p"],  # given twice: the one after the command wins
])
def test_store_options_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    s = settings_from(args)
    assert (s.qdrant_url, s.collection, args.paths) == ("http://db:6333", "c", ["p"])


def test_options_not_given_fall_back_to_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUMO_COLLECTION", "from_env")
    args = build_parser().parse_args(["info"])
    assert settings_from(args).collection == "from_env"


def test_index_of_a_missing_path_fails_before_creating_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import indexer.ingest

    def no_model(*_: object) -> None:
        raise AssertionError("the model must not load for a path that does not exist")

    monkeypatch.setattr(indexer.ingest, "_load_embedder", no_model)
    data = tmp_path / "data"
    code = main(["--data", str(data), "--model", "sumo-tiny", "--pretrained", "none",
                 "index", str(tmp_path / "no" / "such")])
    assert code == 2
    assert f"not found: {tmp_path / 'no' / 'such'}" in capsys.readouterr().err
    assert not data.exists()


def test_open_clip_info_lines_are_quiet(
    tmp_path: Path, make_images: object, capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # basicConfig only acts once per process: start from a bare root logger, as `sumo` does.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    make_images(tmp_path / "p", 2)  # type: ignore[operator]
    code = main(["--data", str(tmp_path / "d"), "--model", "sumo-tiny", "--pretrained", "none",
                 "--device", "cpu", "index", str(tmp_path / "p")])
    err = capfd.readouterr().err
    for h in root.handlers:
        h.close()
    assert code == 0
    assert "indexing 2 file(s)" in err  # our own INFO lines still show
    assert "Parsing tokenizer identifier" not in err and "open_clip" not in err


def test_index_ray_takes_a_lone_path_as_a_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("ray")
    import indexer.ingest

    seen: dict[str, object] = {}

    def fake_run_index(settings: object, paths: list[Path], prune: bool, embed_step: object) -> int:
        seen.update(paths=paths, embed_step=embed_step)
        return 0

    monkeypatch.setattr(indexer.ingest, "run_index", fake_run_index)
    (tmp_path / "photos").mkdir()
    assert main(["index", "--ray", str(tmp_path / "photos")]) == 0
    assert seen["paths"] == [tmp_path / "photos"]
    assert getattr(seen["embed_step"], "address", "?") is None  # no address: the local cluster
    assert main(["index", "--ray", "auto", str(tmp_path / "photos")]) == 0
    assert getattr(seen["embed_step"], "address", "?") == "auto"
    assert main(["index", "--ray"]) == 2  # no path at all: a usage error, no Ray started
    assert "at least one PATH is required" in capsys.readouterr().err
