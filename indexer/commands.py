"""Corpus commands: ``sumo index``, ``sumo import``, ``sumo info``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from indexer.errors import SumoError
from indexer.settings import CorpusSettings
from indexer.store import open_store


class UsageError(SumoError):
    """A command line the parser accepted but the command cannot run."""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "index", parents=parents, help="embed image folders into the corpus (incremental)",
        description="Scan folders for images, embed new or changed files with CLIP, and "
        "store them. Unchanged files are skipped; re-running is safe.",
    )
    # "*", not "+": in `sumo index --ray /photos` argparse hands the only path to --ray.
    p.add_argument("paths", nargs="*", metavar="PATH", help="image folders or files")
    p.add_argument("--prune", action="store_true", help="remove items whose files are gone")
    p.add_argument(
        "--ray", nargs="?", const="", default=None, metavar="ADDRESS",
        help="embed on Ray (pip install 'sumo[ray]'): alone, the Ray cluster running here "
        "(RAY_ADDRESS or the last `ray start`) or else a new local one; 'auto': that cluster "
        "or an error; 'local': always a new one; HOST:PORT or ray://HOST:PORT: a remote "
        "head. Writes still go from this process to the store",
    )
    p.add_argument("--ray-workers", type=int, default=0, metavar="N",
                   help="models on Ray (default: one per GPU, else one per CPU core)")
    p.set_defaults(func=cmd_index)

    p = subparsers.add_parser(
        "import", parents=parents, help="load precomputed vectors (.npy or clip-retrieval)",
        description="Load precomputed embeddings: VECTORS.npy with --ids (and optional "
        "--metadata), or a clip-retrieval output folder (img_emb/, metadata/). Vectors are "
        "L2-normalised. The collection records model 'import:<name>' unless --model names "
        "the CLIP that made them (then --pretrained gives its tag).",
    )
    p.add_argument("source", type=Path, metavar="VECTORS.npy|DIR")
    p.add_argument("--ids", type=Path, metavar="IDS.txt", help="one id per vector, in order")
    p.add_argument(
        "--metadata", type=Path, metavar="FILE", help="JSON lines or parquet, one row per vector"
    )
    p.add_argument("--batch", type=int, default=1024, help="vectors per upsert (1024)")
    p.set_defaults(func=cmd_import)

    p = subparsers.add_parser(
        "info", parents=parents, help="print the collection, item count, model and dimension"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_info)


def cmd_index(args: argparse.Namespace, settings: CorpusSettings) -> int:
    from indexer.ingest import run_index  # the embedder and torch load only for this command

    paths = list(args.paths)
    embed_step = None
    if args.ray is not None:
        from indexer.distributed import RayEmbedStep, is_address

        address: str | None = args.ray or None
        if address is not None and not is_address(address):
            # `sumo index --ray /photos`: argparse gave the first path to --ray.
            paths, address = [address, *paths], None
        embed_step = RayEmbedStep(address=address, workers=args.ray_workers)
    if not paths:
        raise UsageError("at least one PATH is required: sumo index [--ray [ADDRESS]] PATH...")
    return int(run_index(settings, [Path(p) for p in paths], prune=args.prune,
                         embed_step=embed_step))


def cmd_import(args: argparse.Namespace, settings: CorpusSettings) -> int:
    from indexer.importer import import_vectors, summarize

    with open_store(settings) as store:
        result = import_vectors(
            store, args.source, ids=args.ids, metadata=args.metadata,
            # Only a --model given on this command line names the vectors' model; SUMO_MODEL
            # describes the embedder for `sumo index`, not somebody else's vectors.
            model=args.model, pretrained=args.pretrained or settings.pretrained,
            batch=args.batch,
        )
        print(summarize(result, store))
    return 0


def collection_info(settings: CorpusSettings) -> dict[str, Any]:
    backend = "qdrant-server" if settings.server else "qdrant-edge"
    location = settings.qdrant_url if settings.server else str(Path(settings.data).absolute())
    info: dict[str, Any] = {
        "collection": settings.collection, "backend": backend, "location": location,
        "exists": False, "items": 0, "model": "", "dim": 0,
    }
    if not settings.server and not (Path(settings.data) / settings.collection).exists():
        return info  # don't create a data folder just to say it is empty
    with open_store(settings) as store:
        spec = store.spec()
        if spec is not None:
            info.update(exists=True, items=store.count(), model=spec.model, dim=spec.dim)
    return info


def cmd_info(args: argparse.Namespace, settings: CorpusSettings) -> int:
    info = collection_info(settings)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"collection  {info['collection']}")
    print(f"backend     {info['backend']} ({info['location']})")
    if not info["exists"]:
        print("items       0 (the collection does not exist yet)")
        return 0
    print(f"items       {info['items']}")
    print(f"model       {info['model']}")
    print(f"dim         {info['dim']}")
    return 0
