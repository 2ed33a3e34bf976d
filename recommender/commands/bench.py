"""``sumo bench recommend``: the simulated-user benchmark (see ``recommender.sim.bench``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recommender.policies import policy_names


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    bench = subparsers.add_parser("bench", help="benchmarks", parents=parents)
    sub = bench.add_subparsers(dest="bench", metavar="BENCH", required=True)
    p = sub.add_parser(
        "recommend", parents=parents,
        help="taste capture of every policy against simulated users",
        description="Every policy against simulated users with hidden tastes in one or "
                    "more simulated worlds (corpus geometry x dwell behaviour), through a real "
                    "Qdrant Edge store, beside each world's known-model ceiling: taste capture "
                    "at T=25/100/300, impressions to the first liked item, repeats; writes "
                    "recommend-WORLD.json and recommend-WORLD.png per world.",
    )
    p.add_argument("--world", default="default",
                   help="CORPUS:DWELL[:TASTE], a preset (default = clusters:mixed, flat = "
                        "clusters:threshold), a comma-separated list, or 'all' "
                        "(see --list-worlds)")
    p.add_argument("--list-worlds", action="store_true", help="print the world names and exit")
    p.add_argument("--no-ceiling", action="store_true",
                   help="skip the known-model ceiling (faster)")
    p.add_argument("--items", type=int, default=100_000, help="corpus size (default 100000)")
    p.add_argument("--users", type=int, default=50, help="users per model (default 50)")
    p.add_argument("--models", default=None,
                   help="comma-separated tastes (default: all of the world's)")
    p.add_argument("--policies", default=",".join(policy_names()),
                   help="comma-separated policies (oracle always runs)")
    p.add_argument("--horizon", type=int, default=300, help="impressions per user")
    p.add_argument("--batch", type=int, default=5, help="items per recommendation request")
    p.add_argument("--clusters", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="processes (default: one per core)")
    p.add_argument("--out", type=Path, default=Path("bench-results"),
                   help="folder for the recommend-WORLD.json and .png files")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 4000 items, 2 users, horizon 100, one worker")
    p.add_argument("--tables", nargs="+", type=Path, metavar="JSON",
                   help="print the tables of saved results (recommend-WORLD.json) instead "
                        "of running: the docs' tables come from these")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Any) -> int:
    from recommender.sim.bench import BenchConfig, run_benchmark, save
    from recommender.sim.worlds import UnknownWorld, world, world_names

    if args.list_worlds:
        print("\n".join(world_names()))
        return 0
    if args.tables:
        return _reprint(args.tables)
    names = world_names() if args.world == "all" else args.world.split(",")
    try:
        worlds = [world(n) for n in names]
        if args.models:
            for m in args.models.split(","):
                world(f"clusters:mixed:{m}")  # fail early on a typo
    except UnknownWorld as e:
        print(f"sumo bench recommend: {e}")
        return 2
    results = []
    for name, w in zip(names, worlds, strict=True):
        cfg = BenchConfig(
            world=name, items=args.items, users=args.users,
            models=args.models.split(",") if args.models else list(w.tastes),
            policies=[p for p in args.policies.split(",") if p not in ("oracle", "ceiling")],
            horizon=args.horizon, batch=args.batch, clusters=args.clusters, seed=args.seed,
            workers=args.workers, ceiling=not args.no_ceiling,
        )
        if args.quick:
            cfg.items, cfg.users, cfg.horizon, cfg.workers = 4000, 2, 100, 1
        print(f"sumo bench recommend: world {w.name}, {cfg.items} items, {cfg.users} users x "
              f"{len(cfg.models)} tastes, {len(cfg.policies)} policies, horizon {cfg.horizon}, "
              f"batch {cfg.batch}", flush=True)
        result = run_benchmark(cfg)
        if _report(result):
            results.append(result)
        js, png = save(result, args.out)
        print(f"wrote {js} and {png}")
        print()
    _summary(results)
    return 0


def _reprint(paths: list[Path]) -> int:
    results = []
    for path in paths:
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            print(f"sumo bench recommend: cannot read {path}: {e}")
            return 2
        print(f"{path}: world {result['config']['world']}, {result['config']['items']} items, "
              f"{result['config']['users']} users per taste")
        if _report(result):
            results.append(result)
        print()
    _summary(results)
    return 0


def _summary(results: list[dict[str, Any]]) -> None:
    from recommender.sim.bench import worlds_summary

    if len(results) > 1:
        print("Every world, T=100 (mean over tastes):")
        print(worlds_summary(results))


def _report(result: dict[str, Any]) -> bool:
    """Print one world's tables; True when it has ``sumo`` beside the ceiling (and so
    belongs in the summary over worlds)."""
    from recommender.sim.bench import detail_table, table, world_table

    cfg = result["config"]

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
        print(f"sumo recommend (batch {cfg['batch']}): p50 {perf['sumo_recommend_ms_p50']:.2f} ms "
              f"({perf['sumo_recommend_ms_p50'] / base:.1f}x a raw store search)")
        print(f"sumo state: at most {perf['sumo_state_bytes_max']:.0f} bytes excluding the "
              f"seen list (limit 16384)")
    print(f"load {meta['load_s']:.0f} s, run {meta['run_s']:.0f} s on {meta['workers']} workers")
    if not (cfg["ceiling"] and "sumo" in cfg["policies"]):
        return False
    print()
    print(f"World {cfg['world']}: sumo beside the known-model ceiling:")
    print(world_table(result))
    return True
