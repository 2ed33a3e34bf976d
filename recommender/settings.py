"""The one settings class of the app (environment prefix ``SUMO_``)."""

from pydantic import Field, field_validator

from indexer.settings import CorpusSettings


class Settings(CorpusSettings):
    # HTTP service
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    api_key: str | None = Field(
        default=None, description="service key of a trusted backend: acts for any user "
        "(never hand it to browsers; give them per-user tokens)")
    admin_key: str | None = Field(default=None, description="Bearer key for indexing and reports")
    token_secret: str | None = Field(
        default=None, min_length=32,
        description="HS256 secret that signs and checks per-user tokens (sumo token USER)")
    token_secret_previous: str | None = Field(
        default=None, min_length=32,
        description="the secret before the last rotation: its tokens stay valid until it is unset")
    rate_limit_user: str = Field(
        default="50/second", description="requests per user (limits syntax, e.g. '50/second;"
        "2000/minute'; empty: no limit)")
    rate_limit_key: str = Field(
        default="2000/second",
        description="requests per service or admin key (limits syntax; empty: no limit)")
    rate_limit_storage: str = Field(
        default="memory://", description="where counts live: memory:// (per process) or a "
        "shared store such as redis://host:6379 so that replicas share them")
    policy: str = "sumo"  # deployment default; a request may name another (A/B tests)
    seed: int | None = None  # policies' random seed: set it for reproducible simulations
    max_events_per_request: int = 256
    max_limit: int = 100
    max_body_bytes: int = 1_000_000
    image_cache: int = 512  # resized images kept in memory
    server_timing: bool = Field(
        default=True, description="send a Server-Timing header (the app's and the engine's "
        "milliseconds) with every response")
    flush_seconds: float = Field(
        default=60.0, ge=0,
        description="seconds between store flushes, which truncate the embedded store's "
        "write-ahead log (0: only at shutdown)")
    regions_seconds: float = Field(
        default=600.0, ge=0,
        description="seconds between checks that the region map (what the sumo policy "
        "searches over) still fits the collection; rebuilt after it changed size by 25% "
        "(0: only at start)")
    @field_validator("api_key", "admin_key", "token_secret", "token_secret_previous",
                     mode="before")
    @classmethod
    def _unset_if_empty(cls, value: object) -> object:
        # ``SUMO_X=`` (as compose writes an optional variable) means "not set".
        return value or None

    # Gap filler (optional extra ``generate``): a Hugging Face id or a local diffusers folder
    generator_model: str = "stabilityai/sdxl-turbo"
