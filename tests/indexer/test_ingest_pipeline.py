"""How ``sumo index`` feeds the model: decoder threads or processes, and the progress it
shows (the bar, its log lines and the summary count the same files at the same rate)."""

from __future__ import annotations

import io
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from indexer.embedder import Embedder
from indexer.ingest import decode_in_processes, format_report, index_into
from indexer.progress import Progress
from indexer.settings import CorpusSettings
from indexer.store.edge import EdgeStore

MakeImages = Callable[..., list[Path]]


def write_bad_files(folder: Path, jpeg: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture")
    (folder / "cut.jpg").write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 3])


def _vectors(store: EdgeStore) -> dict[str, np.ndarray]:
    return {it.id: np.asarray(it.vector) for it in store.scroll(with_vectors=True)}


def test_decoder_processes_give_the_thread_path_vectors(
    tmp_path: Path, make_images: MakeImages, tiny_settings: CorpusSettings,
    tiny_embedder: Embedder,
) -> None:
    root = tmp_path / "p"
    good = make_images(root, 14)
    (root / "copy.jpg").write_bytes(good[0].read_bytes())  # a duplicate within the run
    write_bad_files(root / "bad", good[1])
    assert decode_in_processes(tiny_settings.model_copy(update={"decode": "auto"}), "cuda")
    assert not decode_in_processes(tiny_settings.model_copy(update={"decode": "auto"}), "cpu")
    results = {}
    for mode in ("threads", "processes"):
        settings = tiny_settings.model_copy(update={"decode": mode})
        store = EdgeStore(tmp_path / mode)
        try:
            report = index_into(store, settings, [root], embedder=tiny_embedder,
                                progress=False)
            results[mode] = (report, _vectors(store))
        finally:
            store.close()
    (rt, vt), (rp, vp) = results["threads"], results["processes"]
    assert rp.indexed == rt.indexed == 14 and rp.duplicates == rt.duplicates == 1
    assert rp.failed == rt.failed and rp.failures > 0
    assert rp.processed == rt.processed == rt.scanned
    assert vp.keys() == vt.keys()
    for k in vt:
        np.testing.assert_array_equal(vp[k], vt[k])


def test_bar_log_and_summary_agree(
    tmp_path: Path, make_images: MakeImages, tiny_settings: CorpusSettings,
    tiny_embedder: Embedder, caplog: pytest.LogCaptureFixture,
) -> None:
    root = tmp_path / "p"
    good = make_images(root, 20)
    write_bad_files(root / "bad", good[0])  # failures count as read files too
    store = EdgeStore(tmp_path / "s")
    try:
        with caplog.at_level(logging.INFO, logger="indexer.ingest"):
            report = index_into(store, tiny_settings, [root], embedder=tiny_embedder)
    finally:
        store.close()
    bar_lines = [r.getMessage() for r in caplog.records
                 if r.getMessage().startswith("indexing: ")]
    last = re.match(r"indexing: (\d+)/(\d+) \(100%\), ([\d.]+) img/s", bar_lines[-1])
    assert last, bar_lines
    assert int(last[1]) == int(last[2]) == report.processed == report.scanned
    assert report.processed == report.indexed + report.failures + report.duplicates
    summary = format_report(report)
    m = re.search(r"read this run\s+(\d+) in ([\d.]+)s \(([\d.]+) img/s", summary)
    assert m and int(m[1]) == report.processed, summary
    # Same clock: the last bar line and the summary differ only by the final close.
    assert float(m[3]) == pytest.approx(float(last[3]), rel=0.1, abs=0.15)
    assert float(m[3]) == pytest.approx(report.processed / report.process_seconds, abs=0.06)


def test_log_records_do_not_land_inside_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        bar = Progress(4, tty=True, stream=sys.stderr)
        bar.update(2)
        logging.getLogger("indexer.ingest").warning("a message meant for people")
        bar.update(2)
        bar.close()
    finally:
        root.removeHandler(handler)
    line = next(x for x in err.getvalue().split("\n") if "a message meant" in x)
    # tqdm.write clears the bar first: the message is alone on its (carriage-return) line.
    assert line.split("\r")[-1] == "a message meant for people"
    assert bar.done == 4 and bar.elapsed() == bar.elapsed()  # frozen at close
