"""Readiness: may this replica take traffic?"""

from __future__ import annotations

from indexer.errors import StoreUnavailable
from recommender.api.context import AppContext
from recommender.api.schemas import ModelStatus, Readiness, ReadyCheck


def readiness(context: AppContext) -> ReadyCheck:
    """Blocking: asks the store for its item count."""
    reasons: list[str] = []
    items: int | None = None
    store = "ok"
    try:
        context.text.refresh()
        if context.store.spec() is None:
            store = "empty"
            reasons.append("no items collection yet: run `sumo index` or `sumo import`")
        else:
            items = context.store.count()
    except StoreUnavailable as exc:
        store = "unavailable"
        reasons.append(f"store unavailable: {exc}")
    model = context.text.status
    if model is ModelStatus.UNAVAILABLE:
        reasons.append(f"text encoder not loaded: {context.text.reason}")
    status = Readiness.NOT_READY if reasons else Readiness.READY
    return ReadyCheck(status=status, store=store, model=model, items=items, reasons=reasons)
