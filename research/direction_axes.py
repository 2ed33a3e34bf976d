"""How much of a broad taste do the region map's main axes carry? (``AXES`` in evidence.py)

The direction hypothesis (``recommender.policies.evidence``) models interest as linear in
an item's coordinates along the map's top ``AXES`` principal directions. A broad taste in
the simulated worlds is a direction through the whole collection; this measures, per
corpus, the correlation over all items between their position along the taste and along
the taste's projection onto those axes (1: the axes lose nothing of the taste's ordering),
averaged over 20 broad users, for several axis counts.

    PYTHONPATH=. python research/direction_axes.py
    PYTHONPATH=. python research/direction_axes.py --items 100000 --worlds default
"""

from __future__ import annotations

import argparse

import numpy as np

import recommender.policies.evidence as evidence
from recommender.regions import build_region_map
from recommender.sim.worlds import world


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--worlds", default="default,topics:weibull,manifold:lognormal,bursts:smooth")
    ap.add_argument("--axes", default="8,16,32,64")
    args = ap.parse_args()
    counts = [int(a) for a in args.axes.split(",")]
    print(f"{'corpus':<22}" + "".join(f"{f'{m} axes':>10}" for m in counts))
    for name in args.worlds.split(","):
        w = world(name)
        corpus = w.make_corpus(args.items, seed=0)
        regions = build_region_map(corpus.vectors)
        items = corpus.vectors.astype(np.float64)
        items -= items.mean(axis=0)
        tastes = [u.tastes[0].vector.astype(np.float64)
                  for u in w.make_users("broad", corpus, 20, seed=1)]
        row = []
        for m in counts:
            evidence.AXES = m
            axes = evidence.linear_basis(regions).axes.astype(np.float64)
            q, _ = np.linalg.qr(axes.T)  # orthonormal span of the axes
            row.append(np.mean([np.corrcoef(items @ t, items @ (q @ (q.T @ t)))[0, 1]
                                for t in tastes]))
        print(f"{w.corpus:<22}" + "".join(f"{r:>10.2f}" for r in row))


if __name__ == "__main__":
    main()
