"""Service settings, read from CONVLENS_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
Precision = Literal["auto", "float32", "bfloat16"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVLENS_", frozen=True, populate_by_name=True)

    # one folder per model (model.safetensors + model_card.json), named as the model
    weights_dir: Path = REPO_ROOT / "weights"
    models: list[str] = ["shipped", "article", "mlp"]
    default_model: str = "shipped"
    # every prediction says whether the upload is one digit at all (app/core/verdict.py);
    # the verdict network's folder is weights_dir / "verdict"
    verdict: bool = True

    # limits on what one request may ask of the server
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    max_pixels: int = Field(50_000_000, ge=28 * 28)
    max_images_per_request: int = Field(64, ge=1)
    # a v2 `image` tensor (28 x 28 ink maps, no decoding): sent through the batcher in
    # chunks of max_batch_size; never more than max_queue (a bigger one could never queue)
    max_infer_images: int = Field(512, ge=1)
    request_timeout_s: float = Field(30.0, gt=0)  # whole request, upload included: 504 after

    # inference scheduling (see README: chosen from measurements on 2 cores)
    torch_threads: int = Field(1, ge=1)
    # bfloat16 when the CPU computes it natively (AVX512-BF16/AMX), else float32
    precision: Precision = "auto"
    max_batch_size: int = Field(64, ge=1)
    max_wait_ms: float = Field(0.0, ge=0, le=1000)  # 0: a pass takes what queued during the previous one
    max_queue: int = Field(512, ge=1)
    retry_after_s: int = Field(1, ge=1)
    # feature maps, explanations, shift experiments: at most this many at once per process,
    # this many more waiting, the rest 503 (see app/admission.py)
    expensive_concurrency: int = Field(1, ge=1)
    expensive_queue: int = Field(64, ge=0)
    expensive_reject_delay_ms: float = Field(250.0, ge=0, le=10_000)  # pause before that 503
    # /v1/read: pages are read in their own low-priority gate, this many at once per
    # process and this many waiting, so a burst of photos queues there, not before predictions
    read_concurrency: int = Field(1, ge=1)
    read_queue: int = Field(16, ge=0)
    # a prediction the verdict flags is read by the number reader in a gate of its own
    # (app/core/several.py); a full gate leaves the verdict unread instead of refusing
    second_look: bool = True
    look_concurrency: int = Field(1, ge=1)
    look_queue: int = Field(8, ge=0)

    warmup: bool = True
    # glibc keeps up to 64 MiB freed per heap for reuse instead of giving it back to the
    # kernel after every batch (app/serving/allocator.py)
    keep_freed_memory: bool = True
    gc_freeze: bool = True  # exempt start-up objects from garbage collection (see main.py)
    gc_threshold: int = Field(10_000, ge=0)  # allocations between young collections; 0: Python's 700
    # FastAPI's native OpenTelemetry (spans, metrics, logs to the global providers). Off by
    # default: looking for configured providers costs every request ~5 us
    otel: bool = False
    api_key: SecretStr | None = None  # when set, /v1/* needs header X-API-Key
    # the process (python -m convlens.app.serve): the usual unprefixed names work too
    host: str = Field("0.0.0.0", validation_alias=AliasChoices("CONVLENS_HOST", "HOST"))
    port: int = Field(8000, ge=0, le=65535, validation_alias=AliasChoices("CONVLENS_PORT", "PORT"))
    workers: int = Field(2, ge=1, validation_alias=AliasChoices("CONVLENS_WORKERS", "WEB_CONCURRENCY"))
    grace_seconds: float = Field(20.0, ge=0)  # in-flight requests get this long after SIGTERM
    # one listening socket per worker (SO_REUSEPORT, Linux) so the kernel spreads the
    # connections; false: uvicorn's workers sharing one socket
    reuseport: bool = True
    # prometheus_client's own switch, which it reads itself: where the worker processes
    # share their metrics. serve.py makes one when several workers run without it
    metrics_dir: Path | None = Field(None, validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR"))
    access_log: bool = False
    log_level: str = Field("info", validation_alias=AliasChoices("CONVLENS_LOG_LEVEL", "LOG_LEVEL"))
    cors_origins: list[str] = []

    @field_validator("weights_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.max_queue < self.max_batch_size:
            raise ValueError("max_queue must be at least max_batch_size")
        for helper in ("verdict", "cuts"):
            if helper in self.models:
                raise ValueError(f"{helper!r} is the {helper} network's folder, not a model that reads digits")
        if not self.models or len(set(self.models)) != len(self.models):
            raise ValueError("models must name at least one model, each once")
        if self.default_model not in self.models:
            raise ValueError(f"default_model {self.default_model!r} is not one of models {self.models}")
        return self

    def model_dir(self, name: str) -> Path:
        return self.weights_dir / name

    @property
    def verdict_dir(self) -> Path:
        return self.weights_dir / "verdict"

    @property
    def cuts_dir(self) -> Path:
        """The cut network /v1/read scores its candidate digits with."""
        return self.weights_dir / "cuts"


@lru_cache
def get_settings() -> Settings:
    return Settings()
