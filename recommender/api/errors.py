"""Exceptions of the HTTP layer and the handlers that turn every error into one JSON shape:
``{"error": {"code": str, "message": str, "details": [...]}}``.

Clients branch on ``code`` (a stable string enum), people read ``message``; ``details``
lists each problem when a request had several (every bad feedback event, every invalid
field), so a client can fix them all at once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from indexer.errors import ConflictError, NotFound, StoreUnavailable, SumoError
from recommender.api.schemas import ErrorCode
from recommender.errors import BadState, InvalidFeedback, UnknownPolicy

log = logging.getLogger(__name__)


# --- exceptions raised by the HTTP layer --------------------------------------------------
class ApiError(SumoError):
    """An error with a fixed HTTP status and code; subclasses only set the two."""

    status = 500
    code = ErrorCode.INTERNAL

    def __init__(self, message: str, details: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(message)
        self.details = [dict(d) for d in details]


class Unauthorized(ApiError):
    status, code = 401, ErrorCode.UNAUTHORIZED

    def __init__(self, message: str, *, invalid_token: bool = False) -> None:
        super().__init__(message)
        # RFC 6750: a credential that was given but failed says so in the challenge.
        self.challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"


class Forbidden(ApiError):
    status, code = 403, ErrorCode.FORBIDDEN


class RateLimited(ApiError):
    """Over a per-user or per-key request rate; ``retry_after`` in whole seconds."""

    status, code = 429, ErrorCode.RATE_LIMITED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidRequest(ApiError):
    """A request that is well-formed JSON but asks for too much or for nothing."""

    status, code = 422, ErrorCode.VALIDATION


class TextEncoderUnavailable(ApiError):
    """Text features need a CLIP text encoder that is not loaded (weights missing)."""

    status, code = 503, ErrorCode.TEXT_ENCODER_UNAVAILABLE


class TextSpaceMismatch(ApiError):
    """The collection's vectors were not made by the loaded model (e.g. imported vectors):
    a text embedding would live in another space, so text features are refused."""

    status, code = 409, ErrorCode.TEXT_ENCODER_UNAVAILABLE


# --- rendering ----------------------------------------------------------------------------
def error_response(
    status: int, code: ErrorCode, message: str, details: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code.value, "message": message, "details": list(details)}}
    return Response(
        orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY, default=str),
        status_code=status, media_type="application/json", headers=headers,
    )


_HTTP_CODES = {
    401: ErrorCode.UNAUTHORIZED, 403: ErrorCode.FORBIDDEN, 404: ErrorCode.NOT_FOUND,
    413: ErrorCode.PAYLOAD_TOO_LARGE, 422: ErrorCode.VALIDATION,
}
# Seconds a client should wait before retrying while the store is unreachable.
RETRY_AFTER_S = "1"


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    headers: dict[str, str] | None = None
    if isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": exc.challenge}
    elif isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    elif exc.status == 503:
        headers = {"Retry-After": RETRY_AFTER_S}
    return error_response(exc.status, exc.code, str(exc), exc.details, headers)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    message = f"{len(details)} invalid field(s) in the request"
    return error_response(422, ErrorCode.VALIDATION, message, details)


async def _unknown_policy(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UnknownPolicy)
    details = [{"policy": exc.name, "valid": exc.valid}]
    return error_response(422, ErrorCode.UNKNOWN_POLICY, str(exc), details)


async def _invalid_feedback(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidFeedback)
    return error_response(422, ErrorCode.INVALID_FEEDBACK, str(exc), exc.problems)


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(404, ErrorCode.NOT_FOUND, str(exc))


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    # Expected while the store restarts: a warning, not a traceback per request.
    log.warning("store unavailable: %s", exc)
    return error_response(
        503, ErrorCode.STORE_UNAVAILABLE, f"the vector store is unavailable: {exc}",
        headers={"Retry-After": RETRY_AFTER_S},
    )


async def _conflict(request: Request, exc: Exception) -> Response:
    # Only reached when compare-and-set kept losing after every retry.
    return error_response(409, ErrorCode.CONFLICT, str(exc) or "concurrent update; retry")


async def _bad_state(request: Request, exc: Exception) -> Response:
    log.error("undecodable user state: %s", exc)
    return error_response(500, ErrorCode.BAD_STATE, str(exc))


async def _sumo_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled %s: %s", type(exc).__name__, exc)
    return error_response(500, ErrorCode.INTERNAL, str(exc))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.HTTP)
    headers = exc.headers
    if exc.status_code == 405:
        headers = {"Allow": _allowed(request)}
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


def _allowed(request: Request) -> str:
    """Every method any route serves at this path. Starlette's own 405 names only those of
    the first route that matched the path (GET /v1/users/{id} hides its DELETE)."""
    routes = request.app.router.routes
    return ", ".join(
        method for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


async def _internal(request: Request, exc: Exception) -> Response:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, ErrorCode.INTERNAL, "internal server error")


Handler = Callable[[Request, Exception], Awaitable[Response]]
HANDLERS: dict[type[Exception], Handler] = {
    ApiError: _api_error,
    RequestValidationError: _validation,
    UnknownPolicy: _unknown_policy,
    InvalidFeedback: _invalid_feedback,
    NotFound: _not_found,
    StoreUnavailable: _store_unavailable,
    ConflictError: _conflict,
    BadState: _bad_state,
    SumoError: _sumo_error,
    HTTPException: _http,
    Exception: _internal,
}


def install(app: FastAPI) -> None:
    for exc_type, handler in HANDLERS.items():
        app.add_exception_handler(exc_type, handler)
