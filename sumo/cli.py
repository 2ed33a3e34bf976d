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

from pydantic import ValidationError

from indexer.errors import SumoError

# Modules that contribute sub-commands, in the order ``sumo --help`` lists them.
COMMAND_MODULES = (
    "indexer.commands",  # index, import, info
    "recommender.commands.serve",  # serve
    "recommender.commands.token",  # token
    "recommender.commands.bench",  # bench recommend / bench ...
    "recommender.commands.gaps",  # gaps, fill-gaps
)


def common_options() -> argparse.ArgumentParser:
    """Options every command takes; values default to SUMO_* settings.

    They are accepted before the command too (``sumo --qdrant-url URL index ...``). Their
    defaults are suppressed so that a sub-command's parser, which runs second, does not
    overwrite a value given before the command; ``run`` fills in the ones never given.
    """
    p = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
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
    parents = [common_options()]
    parser = argparse.ArgumentParser(
        prog="sumo", description="SUMO: learn what one person wants to see from dwell time alone.",
        parents=parents,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub, parents)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command. Errors propagate; ``main`` reports them."""
    args = build_parser().parse_args(argv)
    for action in common_options()._actions:  # options given neither before nor after
        if not hasattr(args, action.dest):
            setattr(args, action.dest, False if action.nargs == 0 else None)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_quiet_open_clip)
    return int(args.func(args, settings_from(args)))


def _quiet_open_clip(record: logging.LogRecord) -> bool:
    """Drop open_clip's INFO chatter ("Parsing tokenizer identifier", "Loaded ... model
    config"), which it logs on the root logger on every model load; warnings still show."""
    return not (record.levelno < logging.WARNING and "open_clip" in record.pathname)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return run(argv)
    except SumoError as exc:
        print(f"sumo: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # a SUMO_* variable out of range or of the wrong type
        for e in exc.errors():
            name = ".".join(str(part) for part in e["loc"])
            print(f"sumo: error: setting {name} (SUMO_{name.upper()}): {e['msg']}, "
                  f"got {e.get('input')!r}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
