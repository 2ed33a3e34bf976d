"""The OpenAPI document, kept honest: every error status a route can answer, and the
bounds that come from settings (``SUMO_MAX_LIMIT``) or from the running deployment (its
policies), which route declarations cannot know."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from recommender.api.schemas import ErrorResponse
from recommender.policies import policy_names
from recommender.settings import Settings

_WHY = {
    400: "the body could not be read",
    401: "no credential, or an invalid or expired token",
    403: "a wrong key, another user's token, or a closed endpoint",
    404: "no such user or item",
    409: "concurrent updates kept conflicting, or text features do not match the vectors",
    413: "request body over SUMO_MAX_BODY_BYTES",
    422: "invalid request",
    429: "over a rate limit (see Retry-After)",
    503: "the store or the text encoder is unavailable (see Retry-After)",
}


def errors_of(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for error statuses, all in the one error shape."""
    return {s: {"model": ErrorResponse, "description": _WHY[s]} for s in statuses}


def install(app: FastAPI, settings: Settings) -> None:
    """Replace ``app.openapi`` with one that adds what only the running app knows."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )
            _bound(doc, settings)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _bound(doc: dict[str, Any], settings: Settings) -> None:
    policies = policy_names()
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            for param in operation.get("parameters", []):
                schema = param.get("schema", {})
                if param["name"] == "limit" and "maximum" not in schema:
                    schema["maximum"] = settings.max_limit
                elif param["name"] == "policy" and param["in"] == "query":
                    param["schema"] = {"type": "string", "enum": policies}
            # Any request may carry a body the server cannot read (bad encoding).
            if "requestBody" in operation:
                operation["responses"].setdefault("400", _error(400))
                operation["responses"].setdefault("413", _error(413))


def _error(status: int) -> dict[str, Any]:
    return {
        "description": _WHY[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
