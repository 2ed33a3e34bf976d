"""Dependency aliases for route handlers: ``def handler(users: UsersDep, _: OwnerAuth)``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from indexer.store.base import Store
from recommender.api.context import AppContext
from recommender.api.metrics import Metrics
from recommender.api.security import Caller, require_admin, require_catalog, require_owner
from recommender.api.services.images import ImageService
from recommender.api.services.items import ItemService
from recommender.api.services.text import TextService
from recommender.api.services.users import UserService
from recommender.engine import Engine
from recommender.settings import Settings


def _context(request: Request) -> AppContext:
    context: AppContext = request.app.state.sumo
    return context


# Dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in the
# thread pool, a thread hop per dependency per request on the hot path.
async def get_context(request: Request) -> AppContext:
    return _context(request)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_store(request: Request) -> Store:
    return _context(request).store


async def get_engine(request: Request) -> Engine:
    return _context(request).engine


async def get_users(request: Request) -> UserService:
    return _context(request).users


async def get_text(request: Request) -> TextService:
    return _context(request).text


async def get_images(request: Request) -> ImageService:
    return _context(request).images


async def get_items(request: Request) -> ItemService:
    return _context(request).items


async def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


ContextDep = Annotated[AppContext, Depends(get_context)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
EngineDep = Annotated[Engine, Depends(get_engine)]
UsersDep = Annotated[UserService, Depends(get_users)]
TextDep = Annotated[TextService, Depends(get_text)]
ImagesDep = Annotated[ImageService, Depends(get_images)]
ItemsDep = Annotated[ItemService, Depends(get_items)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
# The authenticated caller (routes of a ``SecuredRoute`` router are checked before this).
CatalogAuth = Annotated[Caller, Depends(require_catalog)]
OwnerAuth = Annotated[Caller, Depends(require_owner)]
AdminAuth = Annotated[Caller, Depends(require_admin)]
