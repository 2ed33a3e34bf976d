"""Bearer API keys.

- ``SUMO_API_KEY`` opens the user endpoints (recommendations, feedback, search, images);
- ``SUMO_ADMIN_KEY`` opens the admin endpoints (indexing, reports, metrics) and, being the
  stronger key, the user endpoints too.

With no key configured at all (the loopback default) everything is open. Once any key is
configured, admin endpoints need the admin key: a deployment that set only a user key gets
its admin endpoints closed, never silently open to every user.

A missing key is 401 (with ``WWW-Authenticate: Bearer``), a wrong one 403. Keys are compared
in constant time.
"""

from __future__ import annotations

import hmac
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from recommender.api.errors import Forbidden, Unauthorized
from recommender.settings import Settings

bearer = HTTPBearer(
    auto_error=False, scheme_name="api_key",
    description="SUMO_API_KEY for user endpoints, SUMO_ADMIN_KEY for admin endpoints",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


class Role(StrEnum):
    OPEN = "open"  # no keys configured
    USER = "user"
    ADMIN = "admin"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def authorize(settings: Settings, token: str | None, *, admin: bool) -> Role:
    """The caller's role for an endpoint; raises ``Unauthorized`` or ``Forbidden``."""
    user_key, admin_key = settings.api_key, settings.admin_key
    if not user_key and not admin_key:
        return Role.OPEN
    if admin_key and token is not None and _same(token, admin_key):
        return Role.ADMIN
    if admin:
        if not admin_key:
            raise Forbidden("admin endpoints are disabled: set SUMO_ADMIN_KEY to use them")
        if token is None:
            raise Unauthorized("this endpoint needs the admin key: Authorization: Bearer <key>")
        raise Forbidden("the key given does not open admin endpoints")
    if not user_key:
        return Role.OPEN  # only an admin key is configured: user endpoints stay open
    if token is None:
        raise Unauthorized("this endpoint needs an API key: Authorization: Bearer <key>")
    if _same(token, user_key):
        return Role.USER
    raise Forbidden("the API key given is not valid")


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# ``async def`` so that FastAPI does not run these in the thread pool on every request.
async def require_user(request: Request, credentials: Credentials) -> Role:
    token = credentials.credentials if credentials is not None else None
    return authorize(_settings(request), token, admin=False)


async def require_admin(request: Request, credentials: Credentials) -> Role:
    token = credentials.credentials if credentials is not None else None
    return authorize(_settings(request), token, admin=True)
