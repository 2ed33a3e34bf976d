"""``sumo import`` and ``sumo info`` through the command line, on a real Edge folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from indexer.errors import CollectionMismatch
from indexer.importer import ImportFailed
from indexer.store.edge import EdgeStore
from sumo.cli import run


def sumo(*argv: str) -> int:
    return run(argv)


def _vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32) * 5


@pytest.fixture
def npy(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    x = _vectors(300, 12)
    np.save(tmp_path / "vecs.npy", x)
    (tmp_path / "ids.txt").write_text("".join(f"photo-{i}\n" for i in range(300)))
    return tmp_path / "vecs.npy", tmp_path / "ids.txt", x


def test_import_npy_with_jsonl_metadata_then_info(tmp_path: Path, npy, capsys) -> None:
    vecs, ids, x = npy
    meta = tmp_path / "meta.jsonl"
    meta.write_text("".join(json.dumps({"caption": f"c{i}", "w": i}) + "\n" for i in range(300)))
    data = str(tmp_path / "data")
    assert sumo("import", str(vecs), "--ids", str(ids), "--metadata", str(meta),
                "--data", data, "--batch", "64") == 0
    assert "imported 300 vectors (12-d, model 'import:vecs')" in capsys.readouterr().out

    assert sumo("info", "--json", "--data", data) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["items"], info["model"], info["dim"]) == (300, "import:vecs", 12)
    assert info["backend"] == "qdrant-edge"
    assert sumo("info", "--data", data) == 0
    assert "items       300" in capsys.readouterr().out

    with EdgeStore(data) as s:
        item = s.retrieve(["photo-7"], with_vectors=True)[0]
        np.testing.assert_allclose(item.vector, x[7] / np.linalg.norm(x[7]), atol=1e-6)
        assert item.payload["metadata"] == {"caption": "c7", "w": 7}
        assert s.search(x[42], 1)[0].id == "photo-42"

    # Idempotent: importing again changes nothing.
    assert sumo("import", str(vecs), "--ids", str(ids), "--data", data,
                "--model", "import:vecs") == 0
    with EdgeStore(data) as s:
        assert s.count() == 300


def test_import_records_the_named_clip_and_refuses_another(tmp_path: Path, npy) -> None:
    vecs, ids, _ = npy
    data = str(tmp_path / "data")
    assert sumo("import", str(vecs), "--ids", str(ids), "--data", data,
                "--model", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k") == 0
    with EdgeStore(data) as s:
        assert s.spec().model == "ViT-B-32/laion2b_s34b_b79k"  # type: ignore[union-attr]
    with pytest.raises(CollectionMismatch, match="--model ViT-B-32/laion2b_s34b_b79k"):
        sumo("import", str(vecs), "--ids", str(ids), "--data", data)
    other = tmp_path / "wide.npy"
    np.save(other, _vectors(300, 16))
    with pytest.raises(CollectionMismatch, match="12-d.*16-d"):
        sumo("import", str(other), "--ids", str(ids), "--data", data, "--model", "ViT-B-32")


def test_clip_retrieval_layout_with_parquet_ids(tmp_path: Path, capsys) -> None:
    root = tmp_path / "clip_out"
    (root / "img_emb").mkdir(parents=True)
    (root / "metadata").mkdir()
    parts = [_vectors(40, 8, seed=s) for s in range(3)]
    for i, part in enumerate(parts):  # numbered 0, 1, 10: order is numeric, not textual
        n = (0, 1, 10)[i]
        np.save(root / "img_emb" / f"img_emb_{n}.npy", part)
        pq.write_table(pa.table({
            "image_path": [f"/photos/{n}/{j}.jpg" for j in range(40)],
            "caption": [None if j % 7 == 0 else f"cap {j}" for j in range(40)],
            "score": [float("nan") if j == 3 else j / 10 for j in range(40)],
        }), root / "metadata" / f"metadata_{n}.parquet")
    data = str(tmp_path / "data")
    assert sumo("import", str(root), "--data", data) == 0
    with EdgeStore(data) as s:
        assert s.count() == 120 and s.spec().model == "import:clip_out"  # type: ignore[union-attr]
        it = s.retrieve(["/photos/10/3.jpg"], with_vectors=True)[0]
        assert it.payload["metadata"]["caption"] == "cap 3"
        assert it.payload["metadata"]["score"] is None  # NaN is not JSON
        np.testing.assert_allclose(it.vector, parts[2][3] / np.linalg.norm(parts[2][3]), atol=1e-6)


def test_clip_retrieval_without_metadata_uses_row_numbers(tmp_path: Path) -> None:
    (tmp_path / "c" / "img_emb").mkdir(parents=True)
    np.save(tmp_path / "c" / "img_emb" / "img_emb_0.npy", _vectors(5, 4))
    np.save(tmp_path / "c" / "img_emb" / "img_emb_1.npy", _vectors(5, 4, seed=1))
    assert sumo("import", str(tmp_path / "c"), "--data", str(tmp_path / "d")) == 0
    with EdgeStore(tmp_path / "d") as s:
        assert sorted(int(i.id) for i in s.scroll()) == list(range(10))


@pytest.mark.parametrize(
    "problem, match",
    [
        ("count", "has 300 vectors but .* has 299 ids"),
        ("nan", r"rows \[5, 17\] contain NaN"),
        ("zero", r"rows \[9\] are all zeros"),
        ("dup", "id 'photo-3' appears twice"),
        ("meta", "has 300 vectors but .* has 2 rows"),
        ("shape", "expected N × D floats"),
        ("no-ids", "needs --ids"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(
    tmp_path: Path, npy, problem: str, match: str
) -> None:
    vecs, ids, x = npy
    args = [str(vecs), "--ids", str(ids)]
    if problem == "count":
        ids.write_text("".join(f"photo-{i}\n" for i in range(299)))
    elif problem == "nan":
        x[5, 3] = np.nan
        x[17, 0] = np.inf
        np.save(vecs, x)
    elif problem == "zero":
        x[9] = 0
        np.save(vecs, x)
    elif problem == "dup":
        ids.write_text("".join(f"photo-{min(i, 3) if i == 200 else i}\n" for i in range(300)))
    elif problem == "meta":
        (tmp_path / "m.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
        args += ["--metadata", str(tmp_path / "m.jsonl")]
    elif problem == "shape":
        np.save(vecs, np.arange(10))
    elif problem == "no-ids":
        args = [str(vecs)]
    data = tmp_path / "data"
    with pytest.raises(ImportFailed, match=match):
        sumo("import", *args, "--data", str(data))
    with EdgeStore(data) as s:
        assert s.count() == 0


def test_info_on_a_missing_store_does_not_create_it(tmp_path: Path, capsys) -> None:
    assert sumo("info", "--json", "--data", str(tmp_path / "none")) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["items"], info["model"], info["dim"], info["exists"]) == (0, "", 0, False)
    assert not (tmp_path / "none").exists()


def test_info_on_a_server_store(capsys) -> None:
    # qdrant-client's local mode stands in for the server URL.
    assert sumo("info", "--json", "--qdrant-url", ":memory:") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backend"] == "qdrant-server" and info["items"] == 0
