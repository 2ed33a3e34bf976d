"""Who may call what: per-user tokens, the service key and the admin key.

Credentials (``Authorization: Bearer ...``):

- a per-user token (``recommender.api.tokens``) opens its own user's routes
  (``/v1/users/{its user}/...``) and the shared catalog (items, images, search);
- ``SUMO_API_KEY``, the service key of a trusted backend, acts for any user and opens the
  catalog; it is never handed to browsers;
- ``SUMO_ADMIN_KEY`` opens the admin endpoints (indexing reports, metrics) and, being the
  strongest, everything else.

With no key and no token secret configured (the loopback default) everything is open.
Once either ``SUMO_API_KEY`` or ``SUMO_TOKEN_SECRET`` is set, user and catalog routes
need a credential; once anything is configured, admin endpoints need the admin key (a
deployment that set only user credentials gets its admin endpoints closed, never open).

A missing credential is 401 with ``WWW-Authenticate: Bearer``, an invalid token (expired,
forged, wrong secret) 401 with ``Bearer error="invalid_token"``; a wrong key, or a token
used on another user's routes, 403.
Keys are compared in constant time.

The check runs in ``SecuredRoute`` before FastAPI reads the request body, so an
unauthenticated caller learns nothing from the body's validation (401, not 422). The
dependencies below only hand the resulting ``Caller`` to handlers and mark the routes as
secured in the OpenAPI document.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.responses import Response

from recommender.api import tokens
from recommender.api.errors import Forbidden, Unauthorized
from recommender.settings import Settings


class BearerScheme(HTTPBearer):
    """The bearer scheme as the OpenAPI document shows it. ``guard`` reads the header
    itself (once, before the body), so this dependency parses nothing."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


bearer = BearerScheme(
    auto_error=False, scheme_name="bearer",
    description="a per-user token (sumo token USER), the service key SUMO_API_KEY, or the "
    "admin key SUMO_ADMIN_KEY",
)
Credentials = Annotated[None, Depends(bearer)]
CALLER = "sumo.caller"  # request scope key of the authenticated caller


class Access(StrEnum):
    """What a route needs."""

    CATALOG = "catalog"  # items, images, search: any valid credential
    OWNER = "owner"  # /v1/users/{user_id}/...: that user's token, the service or admin key
    ADMIN = "admin"  # the admin key


class Role(StrEnum):
    OPEN = "open"  # nothing configured that closes this route
    USER = "user"  # a per-user token
    SERVICE = "service"  # SUMO_API_KEY
    ADMIN = "admin"  # SUMO_ADMIN_KEY


@dataclass(frozen=True, slots=True)
class Caller:
    role: Role
    user_id: str | None = None  # a token's user


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def user_routes_closed(settings: Settings) -> bool:
    """Whether users' routes need a credential: a service key or any token secret is set
    (so ``sumo serve`` may bind beyond loopback)."""
    return bool(settings.api_key or tokens.secrets_of(settings))


def authorize(
    settings: Settings, credential: str | None, access: Access, path_user: str | None = None
) -> Caller:
    """The caller of a route needing ``access`` (``path_user``: the user id in its path);
    raises ``Unauthorized`` or ``Forbidden``."""
    service_key, admin_key = settings.api_key, settings.admin_key
    if admin_key and credential is not None and _same(credential, admin_key):
        return Caller(Role.ADMIN)
    if access is Access.ADMIN:
        if not admin_key and not user_routes_closed(settings):
            return Caller(Role.OPEN)
        if not admin_key:
            raise Forbidden("admin endpoints are disabled: set SUMO_ADMIN_KEY to use them")
        if credential is None:
            raise Unauthorized("this endpoint needs the admin key: Authorization: Bearer <key>")
        raise Forbidden("the credential given does not open admin endpoints")
    if not user_routes_closed(settings):
        return Caller(Role.OPEN)
    if credential is None:
        raise Unauthorized(
            "this endpoint needs a user token or the service key: Authorization: Bearer <...>"
        )
    if service_key and _same(credential, service_key):
        return Caller(Role.SERVICE)
    if not tokens.looks_like_token(credential):
        raise Forbidden("the key given is not valid")
    try:
        user_id = tokens.verify(settings, credential)
    except tokens.InvalidToken as exc:
        raise Unauthorized(str(exc), invalid_token=True) from None
    if access is Access.OWNER and path_user != user_id:
        raise Forbidden("this token opens only its own user's routes")
    return Caller(Role.USER, user_id)


def check_acting_for(caller: Caller, user_id: str | None) -> None:
    """A token acts only for its own user: a parameter naming another user is refused."""
    if caller.role is Role.USER and user_id is not None and user_id != caller.user_id:
        raise Forbidden("this token acts only for its own user")


async def guard(request: Request, access: Access) -> Caller:
    """Authenticate (and rate-limit) the request once; later calls reuse the answer."""
    caller: Caller | None = request.scope.get(CALLER)
    if caller is None:
        header = request.headers.get("authorization")
        scheme, _, credential = (header or "").partition(" ")
        given = credential.strip() if scheme.lower() == "bearer" and credential else None
        path_user = request.path_params.get("user_id")
        caller = authorize(request.app.state.settings, given, access, path_user)
        limiter = getattr(request.app.state, "limiter", None)
        if limiter is not None:
            await limiter.check(caller, path_user)
        request.scope[CALLER] = caller
    return caller


# The route dependencies: they mark routes (``SecuredRoute`` reads ``access``), put the
# bearer scheme in the OpenAPI document, and hand the caller to handlers that want it.
# ``async def`` so that FastAPI does not run them in the thread pool.
async def require_catalog(request: Request, _: Credentials) -> Caller:
    return await guard(request, Access.CATALOG)


async def require_owner(request: Request, _: Credentials) -> Caller:
    return await guard(request, Access.OWNER)


async def require_admin(request: Request, _: Credentials) -> Caller:
    return await guard(request, Access.ADMIN)


ACCESS: dict[Callable[..., Any], Access] = {
    require_catalog: Access.CATALOG, require_owner: Access.OWNER, require_admin: Access.ADMIN,
}
_STRICTNESS = [Access.CATALOG, Access.OWNER, Access.ADMIN]


class SecuredRoute(APIRoute):
    """An ``APIRoute`` that runs its ``require_*`` check before the body is read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        needs = [ACCESS[d.dependency] for d in self.dependencies if d.dependency in ACCESS]
        if not needs:
            return handler
        access = max(needs, key=_STRICTNESS.index)

        async def secured(request: Request) -> Response:
            await guard(request, access)
            return await handler(request)

        return secured
