"""The one settings class of the app (environment prefix ``SUMO_``)."""

from pydantic import Field

from indexer.settings import CorpusSettings


class Settings(CorpusSettings):
    # HTTP service
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_key: str | None = Field(default=None, description="Bearer key for user endpoints")
    admin_key: str | None = Field(default=None, description="Bearer key for indexing and reports")
    policy: str = "sumo"  # deployment default; a request may name another (A/B tests)
    seed: int | None = None  # policies' random seed: set it for reproducible simulations
    max_events_per_request: int = 256
    max_limit: int = 100
    max_body_bytes: int = 1_000_000
    image_cache: int = 512  # resized images kept in memory
    flush_seconds: float = Field(
        default=60.0, ge=0,
        description="seconds between store flushes, which truncate the embedded store's "
        "write-ahead log (0: only at shutdown)")
    regions_seconds: float = Field(
        default=600.0, ge=0,
        description="seconds between checks that the region map (what the sumo policy "
        "searches over) still fits the collection; rebuilt after it changed size by 25% "
        "(0: only at start)")
    # Gap filler (optional extra ``generate``): a Hugging Face id or a local diffusers folder
    generator_model: str = "stabilityai/sdxl-turbo"
