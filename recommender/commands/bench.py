"""``sumo bench recommend``: the simulated-user benchmark (see ``recommender.sim.bench``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from recommender.policies import policy_names
from recommender.sim.users import UserModel


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks", parents=parents)
    sub = bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    p = sub.add_parser(
        "recommend", parents=parents,
        help="taste capture of every policy against simulated users",
        description="Every policy against simulated users with hidden tastes, through a "
                    "real Qdrant Edge store: taste capture at T=25/100/300, impressions to the "
                    "first liked item, repeats; writes recommend.json and recommend.png.",
    )
    p.add_argument("--items", type=int, default=100_000, help="corpus size (default 100000)")
    p.add_argument("--users", type=int, default=50, help="users per model (default 50)")
    p.add_argument("--models", default=",".join(m.value for m in UserModel),
                   help="comma-separated user models")
    p.add_argument("--policies", default=",".join(policy_names()),
                   help="comma-separated policies (oracle always runs)")
    p.add_argument("--horizon", type=int, default=300, help="impressions per user")
    p.add_argument("--batch", type=int, default=5, help="items per recommendation request")
    p.add_argument("--clusters", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    p.add_argument("--out", type=Path, default=Path("bench-results"),
                   help="folder for recommend.json and recommend.png")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 4000 items, 2 users, horizon 100, one worker")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Any) -> int:
    from recommender.sim.bench import BenchConfig, detail_table, run_benchmark, save, table

    cfg = BenchConfig(
        items=args.items, users=args.users, models=args.models.split(","),
        policies=[p for p in args.policies.split(",") if p != "oracle"],
        horizon=args.horizon, batch=args.batch, clusters=args.clusters, seed=args.seed,
        workers=args.workers,
    )
    if args.quick:
        cfg.items, cfg.users, cfg.horizon, cfg.workers = 4000, 2, 100, 1
    for m in cfg.models:
        UserModel(m)  # fail early on a typo
    print(f"sumo bench recommend: {cfg.items} items, {cfg.users} users x {len(cfg.models)} "
          f"models, {len(cfg.policies)} policies, horizon {cfg.horizon}, batch {cfg.batch}",
          flush=True)
    result = run_benchmark(cfg)
    print()
    print("Taste capture, (policy - random) / (oracle - random) of expected dwell, "
          "mean over users:")
    print(table(result))
    print()
    print("Impressions until the first liked item (median over users), and repeats:")
    print(detail_table(result))
    perf, meta = result["perf"], result["meta"]
    if perf:
        base = meta["probe"]["search_p50_ms"]
        print()
        print(f"sumo feedback update: p50 {perf['sumo_update_ms_p50']:.3f} ms, p99 "
              f"{perf['sumo_update_ms_p99']:.3f} ms per event "
              f"({perf['sumo_update_ms_p50'] / base:.2f}x a raw store search, p50 {base:.2f} ms)")
        print(f"sumo recommend (batch {cfg.batch}): p50 {perf['sumo_recommend_ms_p50']:.2f} ms "
              f"({perf['sumo_recommend_ms_p50'] / base:.1f}x a raw store search)")
        print(f"sumo state: at most {perf['sumo_state_bytes_max']:.0f} bytes excluding the "
              f"seen list (limit 16384)")
    print(f"load {meta['load_s']:.0f} s, run {meta['run_s']:.0f} s on {meta['workers']} workers")
    js, png = save(result, args.out)
    print(f"wrote {js} and {png}")
    return 0
