"""``sumo gaps`` (the underserved-content report) and ``sumo fill-gaps`` (SDXL-Turbo)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from indexer.embedder.text import TextEmbedder
from indexer.errors import SumoError
from indexer.store import open_store
from indexer.store.base import Store
from recommender.settings import Settings

log = logging.getLogger(__name__)


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "gaps", parents=parents, help="report content users want that the collection lacks",
        description="Cluster users' learned targets, measure how far each cluster is from the "
        "collection's items (calibrated against the corpus), and list the regions best first: "
        "the same report as GET /v1/gaps and the /gaps page.",
    )
    p.add_argument("--limit", type=int, default=10, help="regions to show (10)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--html", metavar="FILE", help="also write the HTML report (map) to FILE")
    p.add_argument("--no-labels", action="store_true", help="skip the CLIP text labels")
    p.set_defaults(func=cmd_gaps)

    f = subparsers.add_parser(
        "fill-gaps", parents=parents, help="generate images for the top gaps (SDXL-Turbo)",
        description="Generate images for the top gaps' suggested prompts with SDXL-Turbo "
        "(optional extra: pip install 'sumo[generate]'), save them to --out, index them into "
        "the collection, and report whether each gap got an image nearer its centroid than "
        "the nearest existing item.",
    )
    f.add_argument("--regions", type=int, default=3, help="gaps to fill (3)")
    f.add_argument("--per-region", type=int, default=4, help="images per gap (4)")
    f.add_argument("--out", default="sumo-generated", metavar="DIR",
                   help="folder for the images, indexed afterwards (./sumo-generated)")
    f.add_argument("--steps", type=int, default=1, choices=range(1, 5), metavar="1-4",
                   help="denoising steps (1)")
    f.add_argument("--size", type=int, default=512, help="image side in pixels (512)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--generator-model", metavar="ID_OR_DIR",
                   help="diffusers model id or local folder (SUMO_GENERATOR_MODEL, "
                   "stabilityai/sdxl-turbo)")
    f.add_argument("--include-served", action="store_true",
                   help="fill the top regions even when none is flagged as a gap")
    f.add_argument("--json", action="store_true", help="print the results as JSON")
    f.set_defaults(func=cmd_fill)


def _encoder(settings: Settings, store: Store, want: bool) -> TextEmbedder | None:
    """The collection's CLIP text side, or None (the report then says why)."""
    spec = store.spec()
    if not want or spec is None or spec.imported:
        return None
    try:
        from indexer.embedder import load_embedder
        from indexer.embedder.registry import settings_for

        emb = load_embedder(settings_for(spec, settings))
    except SumoError as exc:
        log.warning("labels off: %s", exc)
        return None
    return emb


def _progress(step: str, done: int, total: int) -> None:
    """One line per step on stderr (the report's slow steps take seconds at scale)."""
    if done == 0:
        print(f"gaps: {step} ...", file=sys.stderr, flush=True)


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) \
        else f"{v:.{digits}f}"


def format_table(body: dict[str, Any]) -> str:
    rows = [("id", "gap", "score", "users", "searches", "weight", "nearest", "reach", "within",
             "signals", "labels")]
    for r in body["regions"]:
        s, d = r["supply"], r["demand"]
        rows.append((
            r["id"], "GAP" if r["gap"] else "", _f(r["score"], 2), f"{d['users']:.0f}",
            f"{d.get('searches', 0)} ({d.get('unmet_searches', 0)} unmet)",
            _f(d["weight"], 1), _f(s["nearest_similarity"]), _f(s.get("reach_ratio"), 2),
            "-" if s["items_within_radius"] is None
            else f"{s['items_within_radius']}{'+' if s['within_capped'] else ''}",
            ",".join(r.get("signals", [])) or "-",
            ", ".join(lb["text"] for lb in r["labels"]) or "-",
        ))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row[:-1], widths, strict=True))
             + "  " + str(row[-1]) for row in rows]
    t, s = body["threshold"], body["sampled"]
    lines.append("")
    lines.append(
        f"{body['gaps']} gap(s). A gap: score > {t['score']} (nearest item farther than "
        f"{t['reach_margin']} × the angle the centre of served content keeps to its items, "
        "demand tighter than the nearest item), unmet demand >= "
        f"{t['min_demand']} and supported (most searches unmet, or targets tight).")
    sample_note = (f" (a uniform sample of {s['users_eligible']})" if s["sampled"] else "")
    lines.append(
        f"Users: {s['users_used']} used{sample_note} of {s['users_scanned']} scanned; "
        f"searches: {s.get('searches', 0)}; items: {s['items']} "
        f"({s['items_sampled_for_calibration']} sampled for calibration); "
        f"{body['elapsed_s']} s.")
    if not body["regions"]:
        if s["items"] == 0:
            lines.append("The collection holds no items yet: index some first (sumo index).")
        elif s["users_used"] == 0 and not s.get("searches"):
            skipped = s.get("skipped", {})
            lines.append(
                "No demand yet: users need at least 5 feedback events each to count "
                f"({skipped.get('few_events', 0)} have fewer), and no searches were recorded.")
    if body.get("labels_note"):
        lines.append(body["labels_note"])
    for r in body["regions"]:
        if r["gap"] and r["prompt"]:
            lines.append(f"{r['id']} prompt: {r['prompt']}")
    return "\n".join(lines)


def cmd_gaps(args: argparse.Namespace, settings: Settings) -> int:
    from recommender.gaps.render import standalone
    from recommender.gaps.service import GapService

    with open_store(settings) as store:
        service = GapService(store, _encoder(settings, store, not args.no_labels),
                             progress=_progress)
        body = service.as_dict(args.limit, with_map=bool(args.html))
    if args.no_labels:
        body["labels_note"] = "no labels: --no-labels"  # not "could not be loaded"
    if args.html:
        Path(args.html).write_text(standalone(body), encoding="utf-8")
        body.pop("map", None)
    if args.json:
        json.dump(body, sys.stdout, indent=1)
        print()
    else:
        print(format_table(body))
        if args.html:
            print(f"HTML report: {args.html}")
    return 0


def cmd_fill(args: argparse.Namespace, settings: Settings) -> int:
    from recommender.gaps import generate as gen
    from recommender.gaps.report import build_report

    gen.require_extra()  # before any slow work: say how to install it
    options = gen.GenerateOptions(per_prompt=args.per_region, steps=args.steps, size=args.size,
                                  seed=args.seed)
    model = args.generator_model or settings.generator_model
    with open_store(settings) as store:
        encoder = _encoder(settings, store, True)
        if encoder is None:
            raise SumoError("fill-gaps needs the collection's CLIP model (it writes prompts from "
                            "labels and embeds the new images); imported vectors cannot be filled")
        report = build_report(store, encoder=encoder)
        chosen = [r for r in report.regions if r.gap or args.include_served][: args.regions]
        if not chosen:
            print("No gaps to fill (use --include-served to fill the top regions anyway).")
            return 0
        pipe = gen.load_pipeline(model, device=settings.device)
        targets = [gen.Target(r.id, r.prompt or "", r.centroid, r.supply.nearest) for r in chosen]
        results = gen.fill(store, settings, targets, pipe, args.out, options, embedder=encoder,
                           device=settings.device)
    if args.json:
        json.dump([r.to_dict() for r in results], sys.stdout, indent=1)
        print()
        return 0
    for r in results:
        verdict = "FILLED" if r.filled else "not filled"
        print(f"{r.region}: {verdict}: best new image {_f(r.best_new)} vs nearest item before "
              f"{_f(r.nearest_before)} (after indexing: {_f(r.nearest_after)}); "
              f"{len(r.images)} image(s); prompt: {r.prompt}")
    print(f"Images saved in {args.out} and indexed.")
    return 0
