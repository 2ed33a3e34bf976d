"""Per-user tokens: JWTs signed with HS256, claims ``sub`` (the user id) and ``exp``.

An operator's backend (or ``sumo token USER``) mints one for a signed-in person; the token
opens that person's routes and the shared catalog, nothing else. Two secrets are accepted
so that a secret can be rotated without signing everyone out: tokens are signed with
``SUMO_TOKEN_SECRET`` and checked against it and ``SUMO_TOKEN_SECRET_PREVIOUS``.

Only HS256 is accepted (``alg: none`` or any other algorithm is refused by PyJWT before
the signature is looked at).
"""

from __future__ import annotations

import functools
import re
import time

import jwt

from indexer.errors import SumoError
from recommender.api.schemas import USER_ID_PATTERN
from recommender.settings import Settings

ALGORITHM = "HS256"
DEFAULT_TTL_S = 86_400
_USER_ID = re.compile(USER_ID_PATTERN)


class TokensDisabled(SumoError):
    """No ``SUMO_TOKEN_SECRET``: tokens can be neither minted nor checked."""


class BadTokenRequest(SumoError, ValueError):
    """A token asked for an invalid user id or lifetime."""


class InvalidToken(SumoError):
    """A token that is expired, forged, malformed or signed with an unknown secret."""


def secrets_of(settings: Settings) -> list[str]:
    return [s for s in (settings.token_secret, settings.token_secret_previous) if s]


def mint(settings: Settings, user_id: str, ttl_s: int = DEFAULT_TTL_S) -> str:
    """A token for ``user_id``, valid for ``ttl_s`` seconds from now."""
    if not settings.token_secret:
        raise TokensDisabled("set SUMO_TOKEN_SECRET (32 characters or more) to mint tokens")
    if not _USER_ID.match(user_id):
        raise BadTokenRequest(f"user id {user_id!r} does not match {USER_ID_PATTERN}")
    if ttl_s <= 0:
        raise BadTokenRequest("a token's lifetime must be positive")
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, settings.token_secret, algorithm=ALGORITHM)


def looks_like_token(credential: str) -> bool:
    """A compact JWS (three base64url parts); anything else is taken for a key."""
    return credential.count(".") == 2


def verify(settings: Settings, token: str) -> str:
    """The user id a valid token was minted for; raises ``InvalidToken``."""
    secrets = tuple(secrets_of(settings))
    if not secrets:
        raise InvalidToken("tokens are not accepted here (no SUMO_TOKEN_SECRET)")
    subject, expires = _checked(token, secrets)
    if expires <= time.time():  # a token checked while valid may have expired since
        raise InvalidToken("the token has expired: ask for a new one")
    return subject


# A page sends the same token with every request: its signature is checked once, then
# remembered (by the whole token, signature included) until it drops out of the cache.
@functools.lru_cache(maxsize=4096)
def _checked(token: str, secrets: tuple[str, ...]) -> tuple[str, float]:
    for secret in secrets:
        try:
            claims = jwt.decode(
                token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
        except jwt.InvalidSignatureError:
            continue  # maybe signed with the other secret
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired: ask for a new one") from None
        except jwt.InvalidTokenError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not _USER_ID.match(subject):
            raise InvalidToken("the token's subject is not a valid user id")
        return subject, float(claims["exp"])
    raise InvalidToken("the token's signature does not match (forged, or an old secret)")
