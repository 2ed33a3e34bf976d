"""SIGKILL ``sumo index`` mid-run, start it again, and check nothing was lost or doubled.

Real processes on a real Edge folder with the tiny model: kills land after the k-th
progress line (a few milliseconds into later batches), while items, payload moves and
deletions are being written. After each kill the files indexed before that run must still
be claimed; after the final run every file is indexed exactly once.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from indexer.store.edge import EdgeStore

CLI = [sys.executable, "-m", "sumo", "index"]
RUN_TIMEOUT_S = 90

MakeImages = Callable[..., list[Path]]


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMO_")}
    env.update(SUMO_DATA=str(data), SUMO_MODEL="sumo-tiny", SUMO_PRETRAINED="none",
               SUMO_BATCH_SIZE="4", SUMO_WORKERS="1", SUMO_DEVICE="cpu", PYTHONUNBUFFERED="1")
    return env


def _start(args: list[str], data: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    proc = subprocess.Popen(CLI + args, env=_env(data), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def run_and_kill(args: list[str], data: Path, after_lines: int) -> bool:
    """Run until the ``after_lines``-th progress line, then SIGKILL. False if it finished."""
    proc, lines = _start(args, data)
    deadline, seen = time.monotonic() + RUN_TIMEOUT_S, 0
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            if line == "":
                proc.wait(10)
                return False
            if "indexing: " in line:
                seen += 1
                if seen >= after_lines:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                    return proc.returncode == -signal.SIGKILL
        raise AssertionError("sumo index neither progressed nor ended in time")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def run_to_end(args: list[str], data: Path) -> str:
    proc, lines = _start(args, data)
    try:
        proc.wait(RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = []
    while (line := lines.get(timeout=5)) != "":
        out.append(line)
    text = "".join(out)
    assert proc.returncode == 0, text
    return text


def claimed(data: Path) -> dict[str, list[str]]:
    """path -> ids of the items that list it (opened only while no run holds the folder)."""
    owners: dict[str, list[str]] = {}
    with EdgeStore(data) as store:
        for it in store.scroll():
            for p in it.payload.get("paths", []):
                owners.setdefault(p, []).append(it.id)
    return owners


def content_ids(folder: Path) -> dict[str, str]:
    """path -> expected item id for every image that should be indexed."""
    return {
        str(p): hashlib.sha256(p.read_bytes()).hexdigest()[:32]
        for p in folder.rglob("*") if p.is_file() and p.suffix in (".jpg", ".png")
        and "bad" not in p.name
    }


def check_complete(data: Path, folder: Path) -> None:
    want = content_ids(folder)
    owners = claimed(data)
    assert {p: ids for p, ids in owners.items() if len(ids) != 1} == {}  # no path twice
    assert {p: ids[0] for p, ids in owners.items()} == want  # all there, right ids
    with EdgeStore(data) as store:
        assert store.count() == len(set(want.values()))  # one item per distinct content


@pytest.mark.timeout(400)
def test_sigkill_at_any_point_then_resume(tmp_path: Path, make_images: MakeImages,
                                          textured: Callable[..., Image.Image]) -> None:
    photos, data = tmp_path / "photos", tmp_path / "data"
    imgs = make_images(photos, 40, size=(320, 240)) + make_images(
        photos / "sub", 20, start=40, size=(320, 240))
    for i in range(4):  # byte-identical copies: one item, several paths
        shutil.copy(imgs[i], photos / "sub" / f"copy{i}{imgs[i].suffix}")
    (photos / "bad_empty.jpg").write_bytes(b"")
    (photos / "bad_text.png").write_text("nope")

    # Phase 1: a fresh index, killed early and mid-way.
    kills = [run_and_kill([str(photos)], data, after_lines=k) for k in (1, 5)]
    assert any(kills), "no run was killed mid-way: the test proved nothing"
    out = run_to_end([str(photos)], data)
    assert "failed                    2" in out
    check_complete(data, photos)

    # Phase 2: edits, renames, deletions and new files, killed mid-way through --prune.
    before = claimed(data)
    for p in imgs[10:18]:
        textured(1000 + imgs.index(p), (320, 240)).save(p)  # changed content
    for p in imgs[20:24]:
        p.rename(p.with_name("moved_" + p.name))
    for p in imgs[30:34]:
        p.unlink()
    make_images(photos / "new", 8, start=2000, size=(320, 240))
    untouched = {p for p in before if Path(p).exists() and p not in map(str, imgs[10:18])}

    run_and_kill([str(photos), "--prune"], data, after_lines=2)
    after_kill = claimed(data)
    assert untouched <= set(after_kill), "a kill lost an indexed file"
    run_to_end([str(photos), "--prune"], data)
    check_complete(data, photos)

    # Phase 3: nothing left to do, and the run says so.
    out = run_to_end([str(photos)], data)
    assert "new or changed, embedded  0" in out
