"""Generate a folder of realistic photo-sized JPEGs for the indexing benchmark.

Flat colours would flatter the decoder: JPEG decode time follows the entropy-coded size, so
these pictures carry photo-like detail (smooth multi-scale gradients, shapes, blur and fine
sensor-like noise) at 1-4 MP in landscape and portrait, saved at quality 90 with 4:2:0
chroma subsampling like a camera. Generated once and cached; re-running reuses them.

    python -m benchmarks.make_images --n 500 --dir ~/.cache/sumo/bench-images
"""

from __future__ import annotations

import argparse
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEFAULT_DIR = Path(os.environ.get("SUMO_BENCH_IMAGES", "~/.cache/sumo/bench-images")).expanduser()
# Camera-like sizes from 1.2 to 4.0 megapixels.
SIZES = [(1280, 960), (1600, 1200), (1920, 1280), (2048, 1536), (2304, 1728)]


def make_photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = SIZES[seed % len(SIZES)]
    if rng.random() < 0.3:
        w, h = h, w  # portrait
    # Multi-scale smooth structure: coarse random fields upsampled (like lighting and
    # large objects), summed over a few octaves.
    img = np.zeros((h, w, 3), np.float32)
    for octave, amp in ((8, 90.0), (32, 40.0), (128, 18.0)):
        small = rng.uniform(-1, 1, (max(2, h * octave // w), octave, 3)).astype(np.float32)
        field = Image.fromarray(((small + 1) * 127.5).astype(np.uint8), "RGB").resize(
            (w, h), Image.Resampling.BICUBIC)
        img += (np.asarray(field, np.float32) - 127.5) * (amp / 127.5)
    img += rng.uniform(60, 190, 3).astype(np.float32)
    pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(pic)
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(20, w // 3)), y0 + int(rng.integers(20, h // 3))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse((x0, y0, x1, y1), fill=color)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=color)
        else:
            draw.line((x0, y0, x1, y1), fill=color, width=int(rng.integers(2, 12)))
    pic = pic.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.6, 2.0))))
    # Fine noise, as a sensor adds: this is what makes JPEG files photo-sized.
    arr = np.asarray(pic, np.int16) + rng.integers(-9, 10, (h, w, 1), dtype=np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _write(args: tuple[Path, int]) -> None:
    path, seed = args
    tmp = path.with_suffix(".tmp")
    make_photo(seed).save(tmp, "JPEG", quality=90, subsampling="4:2:0")
    tmp.rename(path)  # never leave a half-written picture behind


def ensure_images(folder: Path, n: int, workers: int | None = None) -> list[Path]:
    """``n`` photos in ``folder`` (generated where missing); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i:05d}.jpg" for i in range(n)]
    missing = [(p, i) for i, p in enumerate(paths) if not p.exists()]
    if missing:
        print(f"generating {len(missing)} photo-sized JPEGs in {folder} ...", flush=True)
        with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
            list(pool.map(_write, missing, chunksize=4))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = ap.parse_args()
    paths = ensure_images(args.dir.expanduser(), args.n)
    total = sum(p.stat().st_size for p in paths)
    pixels = 0
    for p in paths:
        with Image.open(p) as im:
            pixels += im.width * im.height
    print(f"{len(paths)} JPEGs in {args.dir}: {total / len(paths) / 1e6:.2f} MB and "
          f"{pixels / len(paths) / 1e6:.2f} MP on average")


if __name__ == "__main__":
    main()
