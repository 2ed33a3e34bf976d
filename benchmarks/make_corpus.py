"""Write a synthetic CLIP-like corpus in the layout `sumo import` reads.

    python -m benchmarks.make_corpus --items 100000 --out corpus/
    sumo import corpus/vectors.npy --ids corpus/ids.txt --metadata corpus/metadata.jsonl

The vectors come from the simulator (``recommender.sim.make_corpus``): clusters on the
sphere sharing a common direction, as CLIP embeddings do. The metadata records each item's
cluster and topic, so simulations can be checked against the ground truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from recommender.sim.corpus import make_corpus


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("corpus"))
    args = ap.parse_args()

    corpus = make_corpus(args.items, dim=args.dim, clusters=args.clusters, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "vectors.npy", corpus.vectors)
    (args.out / "ids.txt").write_text("\n".join(corpus.ids) + "\n")
    with open(args.out / "metadata.jsonl", "w") as f:
        for label, topic in zip(corpus.labels.tolist(), corpus.topics[corpus.labels].tolist(),
                                strict=True):
            f.write(json.dumps({"cluster": label, "topic": topic}) + "\n")
    print(f"wrote {len(corpus.ids)} x {corpus.dim} vectors to {args.out}/")


if __name__ == "__main__":
    main()
