"""Corpus settings. ``recommender.settings.Settings`` extends this class; it is the one
settings object the app and the CLI build (environment prefix ``SUMO_``)."""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineName = Literal["torch", "onnx", "openvino", "auto"]


class CorpusSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUMO_", extra="ignore")

    # Where vectors live: an embedded Qdrant Edge folder, or a Qdrant server/cluster by URL.
    data: Path = Field(default=Path("sumo-data"), description="embedded store folder")
    qdrant_url: str | None = Field(default=None, description="Qdrant server or cluster URL")
    qdrant_api_key: str | None = None
    collection: str = "sumo_items"

    # Which CLIP makes the vectors. ``pretrained`` is an open_clip tag, a local checkpoint
    # path, or "none" for random weights (tests and benchmarks only).
    # Default chosen by measured CPU cost x published quality (docs/indexing.md).
    model: str = "ViT-B-32-256"
    pretrained: str = "datacomp_s34b_b86k"
    device: str = "auto"
    batch_size: int = 32
    workers: int = 0  # 0: pick from the machine's cores
    # The image tower's engine on a CPU: torch, onnx (ONNX Runtime int8), openvino, or auto
    # (measured rule, docs/indexing.md). On a GPU: torch (fp32) or auto (fp16, checked).
    engine: EngineName = "auto"
    # Decoders in threads or processes; auto: processes when the model is on a GPU.
    decode: Literal["threads", "processes", "auto"] = "auto"

    @property
    def server(self) -> bool:
        return self.qdrant_url is not None
