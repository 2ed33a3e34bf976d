"""What one app process holds once started: built by the lifespan, read by dependencies."""

from __future__ import annotations

from dataclasses import dataclass

from indexer.store.base import Store
from recommender.api.metrics import Metrics
from recommender.api.services.images import ImageService
from recommender.api.services.items import ItemService
from recommender.api.services.text import TextService
from recommender.api.services.users import UserService
from recommender.engine import Engine
from recommender.gaps.service import GapService
from recommender.settings import Settings


@dataclass
class AppContext:
    settings: Settings
    store: Store
    engine: Engine
    users: UserService
    images: ImageService
    items: ItemService
    text: TextService
    metrics: Metrics
    gaps: GapService  # one cached gap report per process (the API, the page)
