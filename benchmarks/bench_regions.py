"""How long the region map takes to build (``sumo serve`` builds it at start when missing).

Times ``recommender.regions.build_region_map`` on CLIP-like vectors (the simulator's
corpus, 512-d) at the sizes a service meets; the map is fitted on at most
``regions.SAMPLE`` vectors, so that is the largest size that matters. With ``--against
REV`` the same calls run on ``recommender/regions.py`` as it was at git revision REV,
alternating in this process, and the ratio is printed (the machine is shared; only the
ratio means much):

    python -m benchmarks.bench_regions
    python -m benchmarks.bench_regions --against 850513c   # the k-means before the shared one
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recommender import regions
from recommender.sim.corpus import make_corpus


def module_at(rev: str) -> Any:
    source = subprocess.run(["git", "show", f"{rev}:recommender/regions.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"regions_{rev}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def timed(build: Callable[..., Any], *args: Any) -> tuple[float, int]:
    t0 = time.perf_counter()
    m = build(*args)
    return time.perf_counter() - t0, int(m.size)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="20000,65536")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--against", metavar="REV", help="also time regions.py at this revision")
    args = ap.parse_args()
    old = module_at(args.against) if args.against else None
    for n in (int(s) for s in args.sizes.split(",")):
        x = make_corpus(n, 512, 200, seed=0).vectors
        now, then = [], []
        for _ in range(args.repeat):
            s, k = timed(regions.build_region_map, x)
            now.append(s)
            if old is not None:
                then.append(timed(old.build_region_map, x)[0])
        line = f"{n:>7,} vectors -> {k} regions: {statistics.median(now):6.2f} s"
        if then:
            ratio = statistics.median(now) / statistics.median(then)
            line += (f"  ({args.against}: {statistics.median(then):6.2f} s; "
                     f"ratio {ratio:.2f})")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
