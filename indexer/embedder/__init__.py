"""CLIP embedder (open_clip): loads once, encodes images and texts to unit float32 vectors.

``model_spec(settings)`` answers which collection spec the settings produce without loading
anything heavy; ``load_embedder(settings)`` builds the model (``WeightsMissing`` when the
weights are not on this machine).
"""

import os

# Idle OpenMP workers sleep instead of spinning, so decoder threads get the gaps between
# the model's parallel regions (docs/indexing.md measures the gain).
# Only effective before torch is first imported; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from indexer.embedder.model import Embedder, cpu_count, load_embedder  # noqa: E402
from indexer.embedder.registry import (  # noqa: E402
    ModelChoice,
    UnknownModel,
    WeightsKind,
    choose,
    model_spec,
)
from indexer.errors import WeightsMissing  # noqa: E402

__all__ = [
    "Embedder", "ModelChoice", "UnknownModel", "WeightsKind", "WeightsMissing", "choose",
    "cpu_count", "load_embedder", "model_spec",
]
