"""Recommendation policies behind one interface, resolved by name.

A deployment picks a default (``SUMO_POLICY``); a request may name another for A/B tests.
Simulation-only policies (``oracle``) need the simulator's hidden truth and are not here.
"""

from __future__ import annotations

import numpy as np

from indexer.store.base import Store
from recommender.errors import UnknownPolicy
from recommender.policies.base import Policy, Scored, slerp
from recommender.policies.lints import LinTSPolicy
from recommender.policies.qdrant_feedback import QdrantFeedbackPolicy
from recommender.policies.qdrant_recommend import QdrantRecommendBestPolicy, QdrantRecommendPolicy
from recommender.policies.random import RandomPolicy
from recommender.policies.rocchio import RocchioPolicy
from recommender.policies.sumo import SumoPolicy, SumoSeedPolicy, SumoTargetPolicy

REGISTRY: dict[str, type[Policy]] = {
    cls.name: cls
    for cls in (
        SumoPolicy, SumoTargetPolicy, SumoSeedPolicy, RandomPolicy, RocchioPolicy,
        QdrantRecommendPolicy, QdrantRecommendBestPolicy, QdrantFeedbackPolicy, LinTSPolicy,
    )
}

__all__ = ["REGISTRY", "Policy", "Scored", "make_policy", "policy_names", "slerp"]


def policy_names() -> list[str]:
    return list(REGISTRY)


def make_policy(name: str, store: Store, rng: np.random.Generator) -> Policy:
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise UnknownPolicy(name, policy_names()) from None
    return cls(store, rng)
