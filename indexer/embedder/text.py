"""What text features (search, text warm starts, region labels) need from an embedder.

``indexer.embedder.Embedder`` is one; naming the protocol here lets the recommender's layers
take any such object without importing the model code.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from indexer.store.base import CollectionSpec


class TextEmbedder(Protocol):
    """A CLIP text side: ``name`` is the model as the collection records it."""

    name: str
    dim: int

    def spec(self) -> CollectionSpec: ...

    def encode_texts(self, texts: list[str]) -> NDArray[np.float32]: ...
