"""``sumo token USER``: print a signed per-user token (SUMO_TOKEN_SECRET) for the API and
the feed page (``/?token=...``). An operator's backend does the same for its signed-in
users with ``recommender.api.tokens.mint`` or any JWT library (HS256, ``sub`` and ``exp``).
"""

from __future__ import annotations

import argparse
from typing import Any

from recommender.api.tokens import DEFAULT_TTL_S, mint
from recommender.settings import Settings


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "token", parents=parents, help="print a per-user API token (needs SUMO_TOKEN_SECRET)",
        description="Print a JWT (HS256, signed with SUMO_TOKEN_SECRET) that opens USER's own "
        "routes and the catalog, and nothing else, until it expires. Open the feed page as "
        "/?token=TOKEN, or send it as Authorization: Bearer TOKEN.",
    )
    p.add_argument("user", help="the user id the token is for")
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL_S, metavar="SECONDS",
                   help=f"lifetime in seconds ({DEFAULT_TTL_S})")
    p.set_defaults(func=cmd_token)


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    print(mint(settings, args.user, args.ttl))
    return 0
