"""Tiny exception classes shared by the corpus side. Each carries a message meant for people."""


class SumoError(Exception):
    """Base class: anything SUMO raises on purpose."""


class StoreUnavailable(SumoError):
    """The vector store cannot be reached (server down, folder locked by another writer)."""


class CollectionMismatch(SumoError):
    """The collection was built by another model or dimension; mixing spaces is refused."""


class WeightsMissing(SumoError):
    """Model weights are not on this machine and cannot be downloaded."""


class ConflictError(SumoError):
    """A conditional (compare-and-set) write lost the race; the caller should re-read and retry."""


class NotFound(SumoError):
    """An item, user or document that does not exist."""
