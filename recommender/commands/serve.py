"""``sumo serve``: the HTTP API and feed page on uvicorn.

Binds to 127.0.0.1 by default. Any other address exposes user data to the network, so it
is refused unless user routes are closed: ``SUMO_TOKEN_SECRET`` (per-user tokens) and/or
``SUMO_API_KEY`` (a trusted backend's service key) is set. The port is bound before anything
is loaded: a port in use fails at once, not after the store and the model have loaded.
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import socket
from typing import Any

from indexer.errors import SumoError
from recommender.settings import Settings

log = logging.getLogger(__name__)


class InsecureBind(SumoError):
    """Serving beyond loopback with user routes open to anyone."""


class PortUnavailable(SumoError):
    """The address and port cannot be listened on (in use, or not this machine's)."""


def port_number(text: str) -> int:
    """argparse type for ``--port``: a TCP port, 1 to 65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 1 to 65535")
    return port


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve", parents=parents, help="run the recommendation API and the feed page",
        description="Serve the JSON API (/v1, docs at /docs) and the feed page (/) over the "
        "corpus in --data or --qdrant-url. Credentials: per-user tokens (SUMO_TOKEN_SECRET, "
        "see sumo token), SUMO_API_KEY (a trusted backend acting for any user), SUMO_ADMIN_KEY "
        "(admin endpoints).",
    )
    p.add_argument("--host", help="address to bind (SUMO_HOST, 127.0.0.1); an address beyond "
                   "loopback needs SUMO_TOKEN_SECRET or SUMO_API_KEY")
    p.add_argument("--port", type=port_number, help="port, 1-65535 (SUMO_PORT, 8000)")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=cmd_serve)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (every address it resolves to is
    loopback). Unresolvable names count as not loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos
    )


def check_bind(settings: Settings) -> None:
    from recommender.api.security import user_routes_closed  # the API's own rule

    if not is_loopback(settings.host) and not user_routes_closed(settings):
        raise InsecureBind(
            f"refusing to serve on {settings.host}: beyond loopback every user's data would be "
            f"open to the network. Set SUMO_TOKEN_SECRET (per-user tokens) and/or SUMO_API_KEY "
            f"(a backend's service key), and SUMO_ADMIN_KEY for admin endpoints; or bind to "
            f"127.0.0.1"
        )


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), as uvicorn would bind it, or ``PortUnavailable``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = ("another process (another `sumo serve`?) listens there: stop it or choose "
                "another --port" if exc.errno == errno.EADDRINUSE else "check --host")
        raise PortUnavailable(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") from None
    return sock


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    check_bind(settings)
    sock = listen_socket(settings.host, settings.port)
    import uvicorn

    from recommender.api.app import create_app

    app = create_app(settings)
    where = settings.qdrant_url or str(settings.data)
    log.info("serving %s on http://%s:%d (docs at /docs)", where, settings.host, settings.port)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, access_log=args.access_log,
        log_level="debug" if args.verbose else "info", timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    with sock:
        server.run(sockets=[sock])
    return 0 if server.started else 1
