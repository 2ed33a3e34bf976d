"""The simulated-user benchmark: every policy against every taste of one world
(``recommender.sim.worlds``), through a real Qdrant Edge store, in parallel worker
processes, beside the world's known-model ceiling (``recommender.sim.ceiling``).

Edge allows one process per folder, so the corpus is loaded once and the folder copied for
each extra worker; workers regenerate the (deterministic) corpus arrays instead of
receiving 200 MB through a pipe.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recommender.policies import policy_names
from recommender.sim.ceiling import HYPOTHESES, ceiling_run
from recommender.sim.corpus import SyntheticCorpus, load_corpus
from recommender.sim.harness import user_seed
from recommender.sim.runner import Trace, run_user
from recommender.sim.users import UserModel
from recommender.sim.worlds import world

CHECKPOINTS = (25, 100, 300)


@dataclass
class BenchConfig:
    world: str = "default"
    items: int = 100_000
    users: int = 50
    models: list[str] = field(default_factory=lambda: [m.value for m in UserModel])
    policies: list[str] = field(default_factory=policy_names)
    horizon: int = 300
    batch: int = 5
    clusters: int = 200
    dim: int = 512
    seed: int = 0
    workers: int = 0  # 0: one per core
    ceiling: bool = True  # also run the known-model ceiling for every user

    def worker_count(self) -> int:
        return self.workers or max(1, min(os.cpu_count() or 1, 8))


@dataclass
class Summary:
    policy: str
    model: str
    capture: dict[int, float]  # T -> mean capture over users
    capture_sem: dict[int, float]  # standard error of that mean
    # Impressions until the first liked item, median over all users, a user who saw none
    # counting as later than any who did (None: the median user saw none in the horizon).
    # Over only the users who got one it would flatter a policy that rarely finds any:
    # random picks' few lucky users.
    first_like_median: float | None
    never_liked: int  # users who saw no liked item within the horizon
    repeats: int
    users: int


# --- worker side ----------------------------------------------------------------------
_W: dict[str, Any] = {}


def _worker_init(cfg: BenchConfig, folders: mp.Queue[str]) -> None:
    from indexer.store.edge import EdgeStore

    w = world(cfg.world)
    _W["cfg"] = cfg
    _W["world"] = w
    _W["corpus"] = w.make_corpus(cfg.items, cfg.seed, cfg.dim, cfg.clusters)
    _W["store"] = EdgeStore(folders.get())
    _W["users"] = {m: w.make_users(m, _W["corpus"], cfg.users, seed=cfg.seed)
                   for m in cfg.models}
    _W["others"] = {}


def _others(model: str) -> list[Any]:
    """The ceiling's other hypotheses for this taste: another draw of the world's users."""
    if model not in _W["others"]:
        _W["others"][model] = _W["world"].make_users(model, _W["corpus"], HYPOTHESES - 1,
                                                     seed=10_000 + _W["cfg"].seed)
    return list(_W["others"][model])


def bench_seed(seed: int, index: int) -> int:
    """The benchmark's run seed of user ``index``: a study that reuses it meets the same
    dwell draws as the benchmark's tables."""
    return user_seed(seed, index) + 17


def _run_task(task: tuple[str, int]) -> list[Trace]:
    model, i = task
    cfg: BenchConfig = _W["cfg"]
    user = _W["users"][model][i]
    out = []
    seed = bench_seed(cfg.seed, i)
    for p in ["oracle", *cfg.policies]:
        out.append(run_user(_W["store"], _W["corpus"], user, i, p, horizon=cfg.horizon,
                            batch=cfg.batch, seed=seed))
    if cfg.ceiling:
        out.append(ceiling_run(_W["corpus"], user, i, _others(model), horizon=cfg.horizon,
                               batch=cfg.batch, seed=seed))
    return out


# --- driver ---------------------------------------------------------------------------
def build_store(cfg: BenchConfig, folder: Path) -> tuple[SyntheticCorpus, float]:
    from indexer.store.edge import EdgeStore

    corpus = world(cfg.world).make_corpus(cfg.items, cfg.seed, cfg.dim, cfg.clusters)
    t0 = time.perf_counter()
    with EdgeStore(folder) as store:
        load_corpus(store, corpus)
    return corpus, time.perf_counter() - t0


def run_benchmark(cfg: BenchConfig, *, workdir: Path | None = None,
                  progress: bool = True) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="sumo-bench-", dir=workdir))
    try:
        corpus, load_s = build_store(cfg, tmp / "w0")
        n_workers = min(cfg.worker_count(), cfg.users * len(cfg.models))
        for w in range(1, n_workers):
            shutil.copytree(tmp / "w0", tmp / f"w{w}")
        probe = _store_probe(tmp / "w0", corpus)
        tasks = [(m, i) for i in range(cfg.users) for m in cfg.models]
        traces: list[Trace] = []
        t0 = time.perf_counter()

        def collect(results: Iterator[list[Trace]]) -> None:
            for k, res in enumerate(results, 1):
                traces.extend(res)
                if progress and (k % max(1, len(tasks) // 20) == 0 or k == len(tasks)):
                    print(f"  {k}/{len(tasks)} users done ({time.perf_counter() - t0:.0f} s)",
                          flush=True)

        ctx = mp.get_context("spawn")  # Edge holds threads; never fork it
        folders: mp.Queue[str] = ctx.Queue()
        for w in range(n_workers):
            folders.put(str(tmp / f"w{w}"))
        if n_workers == 1:
            _worker_init(cfg, folders)
            try:
                collect(map(_run_task, tasks))
            finally:
                _W.pop("store").close()
        else:
            with ctx.Pool(n_workers, initializer=_worker_init, initargs=(cfg, folders)) as pool:
                collect(pool.imap_unordered(_run_task, tasks))
        run_s = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summarise(cfg, traces, load_s=load_s, run_s=run_s, probe=probe,
                     workers=n_workers)


def _store_probe(folder: Path, corpus: SyntheticCorpus) -> dict[str, float]:
    """Raw store latencies measured here, the baseline the policies' timings are read against."""
    from indexer.store.edge import EdgeStore

    rng = np.random.default_rng(1)
    exclude = set(corpus.ids[:300])
    with EdgeStore(folder) as store:
        qs = corpus.vectors[rng.integers(0, len(corpus.ids), 200)]
        t = []
        for q in qs:
            t0 = time.perf_counter()
            store.search(q, 5, exclude=exclude)
            t.append((time.perf_counter() - t0) * 1000)
    return {"search_p50_ms": statistics.median(t)}


def _rows(policies: Sequence[str], traces: Sequence[Trace] | None = None) -> list[str]:
    """Table rows: the oracle, the policies, and the ceiling where it ran."""
    ceiling = traces is None or any(t.policy == "ceiling" for t in traces)
    return ["oracle", *policies, *(["ceiling"] if ceiling else [])]


def _sem(xs: Sequence[float]) -> float:
    return float(np.std(xs, ddof=1) / np.sqrt(len(xs))) if len(xs) > 1 else 0.0


def summarise(cfg: BenchConfig, traces: list[Trace], **meta: Any) -> dict[str, Any]:
    oracle = {(t.model, t.user): t for t in traces if t.policy == "oracle"}
    checkpoints = [c for c in CHECKPOINTS if c <= cfg.horizon] or [cfg.horizon]
    curve_ts = list(range(5, cfg.horizon + 1, 5))
    summaries: list[Summary] = []
    curves: dict[str, dict[str, list[float]]] = {}
    for p in _rows(cfg.policies, traces):
        curves[p] = {}
        for m in cfg.models:
            ts = [t for t in traces if t.policy == p and t.model == m]
            if not ts:
                continue
            caps = {c: [t.capture(oracle[(m, t.user)], c) for t in ts] for c in checkpoints}
            firsts = [math.inf if t.first_like is None else t.first_like for t in ts]
            median = float(np.median(firsts))
            summaries.append(Summary(
                policy=p, model=m,
                capture={c: float(np.mean(v)) for c, v in caps.items()},
                capture_sem={c: _sem(v) for c, v in caps.items()},
                first_like_median=median if math.isfinite(median) else None,
                never_liked=sum(t.first_like is None for t in ts),
                repeats=sum(t.repeats for t in ts), users=len(ts),
            ))
            curves[p][m] = [float(np.mean([t.capture(oracle[(m, t.user)], c) for t in ts]))
                            for c in curve_ts]
    sumo = [t for t in traces if t.policy == "sumo"]
    perf: dict[str, float] = {}
    if sumo:
        upd = np.concatenate([t.update_ms for t in sumo])
        rec = np.concatenate([t.recommend_ms for t in sumo])
        perf = {
            "sumo_update_ms_p50": float(np.median(upd)),
            "sumo_update_ms_p99": float(np.percentile(upd, 99)),
            "sumo_recommend_ms_p50": float(np.median(rec)),
            "sumo_state_bytes_max": float(max(t.state_bytes for t in sumo)),
        }
    return {
        "config": asdict(cfg), "checkpoints": checkpoints, "curve_t": curve_ts,
        "summaries": [asdict(s) for s in summaries], "curves": curves, "perf": perf,
        "meta": meta,
    }


# --- output ---------------------------------------------------------------------------
def table(result: dict[str, Any]) -> str:
    """Markdown table: policy × user model, capture at each checkpoint."""
    cps = result["checkpoints"]
    models = result["config"]["models"]
    by = {(s["policy"], s["model"]): s for s in result["summaries"]}
    policies = [p for p in _rows(result["config"]["policies"])
                if any(s["policy"] == p for s in result["summaries"])]
    head = "| policy | " + " | ".join(f"{m} T={c}" for m in models for c in cps)
    head += " | " + " | ".join(f"mean T={c}" for c in cps) + " |"
    lines = [head, "|" + "---|" * (1 + len(models) * len(cps) + len(cps))]
    for p in policies:
        cells = []
        for m in models:
            s = by.get((p, m))
            cells += [f"{s['capture'][str(c)] if str(c) in s['capture'] else s['capture'][c]:.2f}"
                      if s else "-" for c in cps]
        means = []
        for c in cps:
            vals = [_cap(by[(p, m)], c) for m in models if (p, m) in by]
            means.append(f"**{np.mean(vals):.2f}**" if vals else "-")
        lines.append(f"| {p} | " + " | ".join(cells) + " | " + " | ".join(means) + " |")
    return "\n".join(lines)


def _cap(s: dict[str, Any], c: int) -> float:
    cap = s["capture"]
    return float(cap[c] if c in cap else cap[str(c)])


def detail_table(result: dict[str, Any]) -> str:
    """Impressions to the first liked item (median) and repeats, per policy × model."""
    models = result["config"]["models"]
    by = {(s["policy"], s["model"]): s for s in result["summaries"]}
    lines = ["| policy | " + " | ".join(f"{m} first like" for m in models) + " | repeats |",
             "|" + "---|" * (len(models) + 2)]
    for p in [p for p in _rows(result["config"]["policies"])
              if any(s["policy"] == p for s in result["summaries"])]:
        cells, reps = [], 0
        for m in models:
            s = by.get((p, m))
            if s is None:
                cells.append("-")
                continue
            reps += s["repeats"]
            f = s["first_like_median"]
            cells.append(("never" if f is None else f"{f:.0f}")
                         + (f" ({s['never_liked']} never)" if s["never_liked"] else ""))
        lines.append(f"| {p} | " + " | ".join(cells) + f" | {reps} |")
    return "\n".join(lines)


Summaries = dict[tuple[str, str], Any]


def _judged(result: dict[str, Any]) -> tuple[int, Summaries]:
    """The largest checkpoint <= 100 (the one the targets are judged at), and the summaries
    by (policy, taste)."""
    c = max([c for c in result["checkpoints"] if c <= 100] or result["checkpoints"])
    return c, {(s["policy"], s["model"]): s for s in result["summaries"]}


def _first_like(by: Summaries, policy: str, model: str) -> str:
    """Median impressions to the first liked item, as a table cell."""
    s = by.get((policy, model))
    if s is None:
        return "-"
    f = s["first_like_median"]
    return "never" if f is None else f"{f:.0f}"


def _first_likes(by: Summaries, policies: Sequence[str], model: str) -> str:
    return " / ".join(_first_like(by, p, model) for p in policies)


def world_table(result: dict[str, Any], policy: str = "sumo") -> str:
    """Per taste at the largest checkpoint <= 100: ``policy``'s capture, the ceiling's, the
    fraction, the best other policy, impressions to the first liked item (``policy``, the
    ceiling and ``random``), and repeats."""
    cfg = result["config"]
    c, by = _judged(result)
    lines = [f"| taste | {policy} T={c} | ceiling | fraction | best other | first liked "
             f"({policy} / ceiling / random) | repeats |", "|---|---|---|---|---|---|---|"]
    caps, ceils = [], []
    for m in cfg["models"]:
        s = by.get((policy, m))
        if s is None:
            continue
        cap = _cap(s, c)
        ceil = _cap(by[("ceiling", m)], c) if ("ceiling", m) in by else float("nan")
        caps.append(cap)
        ceils.append(ceil)
        others = [(p, _cap(by[(p, m)], c)) for p in cfg["policies"]
                  if p != policy and (p, m) in by]
        best = max(others, key=lambda o: o[1]) if others else ("-", float("nan"))
        # Against a ceiling near zero (nothing reachable) a ratio means nothing.
        frac = f"{cap / ceil:.2f}" if ceil > 0.05 else "-"
        lines.append(f"| {m} | {cap:.2f} | {ceil:.2f} | {frac} | {best[0]} {best[1]:.2f} "
                     f"| {_first_likes(by, (policy, 'ceiling', 'random'), m)} "
                     f"| {s['repeats']} |")
    if caps:
        mc, mk = float(np.mean(caps)), float(np.mean(ceils))
        lines.append(f"| **mean** | **{mc:.2f}** | {mk:.2f} | **{mc / mk:.2f}** | | | |")
    return "\n".join(lines)


def worlds_summary(results: Sequence[dict[str, Any]], policy: str = "sumo") -> str:
    """One row per world at the largest checkpoint <= 100: ``policy``'s mean capture over
    tastes, the ceiling's, the fraction, narrow-taste first likes (``policy`` / the
    ceiling / random), the tastes where ``policy`` leads among those any policy captures
    more than 0.05 of, and repeats."""
    lines = [f"| world | {policy} | ceiling | fraction | niche first liked "
             f"({policy} / ceiling / random) "
             f"| {policy} best on | repeats |", "|---|---|---|---|---|---|---|"]
    for r in results:
        c, by = _judged(r)
        models = [m for m in r["config"]["models"] if (policy, m) in by]
        caps = [_cap(by[(policy, m)], c) for m in models]
        ceils = [_cap(by[("ceiling", m)], c) for m in models if ("ceiling", m) in by]
        contested, led = [], []
        for m in models:
            scores = {p: _cap(by[(p, m)], c) for p in r["config"]["policies"] if (p, m) in by}
            if max(scores.values()) > 0.05:
                contested.append(m)
                if max(scores, key=lambda p: scores[p]) == policy:
                    led.append(m)
        mc = float(np.mean(caps)) if caps else float("nan")
        mk = float(np.mean(ceils)) if len(ceils) == len(caps) and ceils else float("nan")
        reps = sum(by[(policy, m)]["repeats"] for m in models)
        lost = sorted(set(contested) - set(led))
        lines.append(f"| {r['config']['world']} | {mc:.2f} | {mk:.2f} | {mc / mk:.2f} | "
                     f"{_first_likes(by, (policy, 'ceiling', 'random'), 'niche')} "
                     f"| {len(led)} of {len(contested)}"
                     + (f" (not {', '.join(lost)})" if lost else "") + f" | {reps} |")
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = result["config"]["models"]
    ts = result["curve_t"]
    policies = [p for p in _rows(result["config"]["policies"]) if p in result["curves"]
                and p != "oracle"]
    fig, axes = plt.subplots(1, len(models) + 1, figsize=(4 * (len(models) + 1), 3.6),
                             sharey=True)
    for ax, m in zip(axes, [*models, "mean"], strict=True):
        for p in policies:
            curves = result["curves"][p]
            y = (np.mean([curves[mm] for mm in models if mm in curves], axis=0) if m == "mean"
                 else curves.get(m))
            if y is None:
                continue
            ax.plot(ts, y, label=p, lw=2.2 if p == "sumo" else 1.2,
                    ls="--" if p == "ceiling" else "-", color="black" if p == "ceiling" else None)
        ax.set_title(m)
        ax.set_xlabel("impressions T")
        ax.axhline(0, color="grey", lw=0.5)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("taste capture")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(policies), fontsize=8)
    fig.suptitle(f"Taste capture vs impressions, world {result['config']['world']} "
                 f"({result['config']['items']:,} items, {result['config']['users']} users "
                 "per taste)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def save(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    slug = result["config"]["world"].replace(":", "-")
    js = out / f"recommend-{slug}.json"
    js.write_text(json.dumps(result, indent=1))
    png = out / f"recommend-{slug}.png"
    plot(result, png)
    return js, png
