"""``sumo`` command line.

Each command lives beside the code it drives and registers itself through a
``register(subparsers, parents)`` function; this module only builds the shared options and
dispatches. Commands return an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from indexer.errors import SumoError

# Modules that contribute sub-commands, in the order ``sumo --help`` lists them.
COMMAND_MODULES = (
    "indexer.commands",  # index, import, info
    "recommender.commands.serve",  # serve
    "recommender.commands.bench",  # bench recommend / bench ...
    "recommender.commands.gaps",  # gaps, fill-gaps
)


def common_options() -> argparse.ArgumentParser:
    """Options every command takes; values default to SUMO_* settings."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("store")
    g.add_argument("--data", metavar="DIR", help="embedded store folder (SUMO_DATA, ./sumo-data)")
    g.add_argument("--qdrant-url", metavar="URL", help="Qdrant server or cluster (SUMO_QDRANT_URL)")
    g.add_argument("--qdrant-api-key", metavar="KEY", help="Qdrant API key (SUMO_QDRANT_API_KEY)")
    g.add_argument("--collection", help="items collection name (SUMO_COLLECTION)")
    m = p.add_argument_group("model")
    m.add_argument("--model", help="open_clip model name (SUMO_MODEL)")
    m.add_argument(
        "--pretrained",
        help="open_clip pretrained tag, a local checkpoint file, or 'none' (SUMO_PRETRAINED)",
    )
    m.add_argument("--device", help="cpu, cuda, or auto (SUMO_DEVICE)")
    m.add_argument("--engine", choices=("auto", "torch", "onnx", "openvino"),
                   help="what runs the image tower: auto picks by CPU or GPU (SUMO_ENGINE)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def settings_from(args: argparse.Namespace):  # -> recommender.settings.Settings
    """Settings from the environment, overridden by any option given on the command line."""
    from recommender.settings import Settings

    overrides = {
        k: v
        for k in ("data", "qdrant_url", "qdrant_api_key", "collection", "model", "pretrained",
                  "device", "engine", "host", "port")
        if (v := getattr(args, k, None)) is not None
    }
    return Settings(**overrides)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sumo", description="SUMO: learn what one person wants to see from dwell time alone."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parents = [common_options()]
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, parents)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command. Errors propagate; ``main`` reports them."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return int(args.func(args, settings_from(args)))


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except SumoError as exc:
        print(f"sumo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
