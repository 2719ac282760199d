"""Process-wide settings, read from ``MLOPS_*`` environment variables.

Defaults keep everything inside a project-local ``.mlops/`` folder so that a demo never
writes into a user's global MLflow or BentoML store unless told to. Building a settings
object creates nothing on disk; :func:`infrastructure.bootstrap.prepare_environment` does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.monitoring.drift import DriftConfig
from domain.serving.variants import CHALLENGER, CHAMPION, SHADOW, Variant, VariantMode

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_URI_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][\w+.-]*://)(?P<user>[^:/@]+):(?P<secret>[^@/]+)@")


def mask_secrets(uri: str) -> str:
    """Hide the password part of ``scheme://user:password@host`` URIs."""
    return _URI_PASSWORD.sub(r"\g<scheme>\g<user>:***@", uri)


class MlopsSettings(BaseSettings):
    """Settings in effect; environment (``MLOPS_`` prefix) overrides the defaults."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", frozen=True, extra="ignore")

    home: Path = Field(
        default_factory=lambda: Path.cwd() / ".mlops",
        description="Project-local state folder; other defaults live under it.",
    )
    tracking_uri: str = Field(
        default="", description="MLflow tracking URI (default: SQLite file in `home`)."
    )
    registry_uri: str = Field(default="", description="MLflow registry URI (default: tracking).")
    artifact_location: str = Field(
        default="", description="Where new MLflow experiments store artifacts."
    )
    bentoml_home: Path = Field(
        default=Path(), description="BentoML model/Bento store (default: `home`/bentoml)."
    )
    log_level: LogLevel = "INFO"

    @model_validator(mode="before")
    @classmethod
    def _derive_defaults_from_home(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        home = Path(values.get("home") or Path.cwd() / ".mlops").expanduser().resolve()
        values["home"] = home
        if not values.get("tracking_uri"):
            values["tracking_uri"] = f"sqlite:///{home / 'mlflow.db'}"
        if not values.get("registry_uri"):
            values["registry_uri"] = values["tracking_uri"]
        if not values.get("artifact_location"):
            values["artifact_location"] = str(home / "mlartifacts")
        if not values.get("bentoml_home") or str(values["bentoml_home"]) in ("", "."):
            values["bentoml_home"] = home / "bentoml"
        values["bentoml_home"] = Path(values["bentoml_home"]).expanduser().resolve()
        if isinstance(values.get("log_level"), str):
            values["log_level"] = values["log_level"].upper()
        return values

    def describe(self) -> dict[str, str]:
        """Settings as display strings, with secrets masked."""
        return {
            "home": str(self.home),
            "tracking_uri": mask_secrets(self.tracking_uri),
            "registry_uri": mask_secrets(self.registry_uri),
            "artifact_location": mask_secrets(self.artifact_location),
            "bentoml_home": str(self.bentoml_home),
            "log_level": self.log_level,
        }


class ServingSettings(BaseSettings):
    """What a Bento service serves and how (``MLOPS_SERVE_*`` environment variables).

    Read when the service module is imported by ``bentoml serve``/``bentoml build``: BentoML
    fixes batching parameters and model dependencies at class-definition time.
    """

    model_config = SettingsConfigDict(env_prefix="MLOPS_SERVE_", frozen=True, extra="ignore")

    model_name: str = Field(default="iris-classifier", min_length=1)
    model_alias: str = Field(default="champion", min_length=1)
    model_tag: str = Field(
        default="", description="Exact BentoML tag (name:version); overrides the alias."
    )
    workers: int = Field(default=1, ge=1)
    startup_wait_s: float = Field(
        default=60.0,
        ge=0.0,
        description=(
            "a worker takes no connections until its first load ends or this passes "
            "(then it answers 503 while loading); under the pod's 120 s startup probe"
        ),
    )
    max_batch_size: int = Field(default=64, gt=1, description="adaptive batching ceiling")
    max_latency_ms: int = Field(
        default=1000, ge=1, description="a request queued longer for its batch gets 503"
    )
    max_concurrency: int = Field(
        default=256, ge=0, description="in-flight requests per worker; 429 above (0: no limit)"
    )
    adaptive_concurrency: bool = Field(
        default=True,
        description=(
            "let a worker take more than MAX_CONCURRENCY in flight, up to the answers per "
            "second it measured x MAX_LATENCY_MS (false: MAX_CONCURRENCY is a fixed count)"
        ),
    )
    timeout_s: int = Field(
        default=30, ge=0, description="504 for a request still running after it (0: BentoML's 60 s)"
    )
    max_instances: int = Field(default=256, ge=1, description="rows/instances per request")
    batching: bool = Field(
        default=True, description="merge concurrent requests of a variant into one model call"
    )
    batch_linger: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description=(
            "after a batch, wait up to this share of its time for the callers it answered "
            "to send again, so their requests join the next batch (0: never wait)"
        ),
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="larger bodies get 413")
    body_timeout_s: float = Field(
        default=10.0, gt=0.0, description="a body not received within this gets 408"
    )
    access_log: bool = Field(default=False, description="BentoML per-request access log")
    request_metrics: bool = Field(
        default=False,
        description=(
            "BentoML's request metrics middleware (bentoml_service_request_* families); "
            "/metrics is served either way"
        ),
    )
    tracing: bool = Field(
        default=False,
        description="OpenTelemetry spans for API requests (set an exporter in BentoML's config)",
    )
    direct_api: bool = Field(
        default=True,
        description=(
            "classify/predict answered without BentoML's routing stack, by the same input "
            "and output models (off while tracing is on)"
        ),
    )
    drift_window: int = Field(default=500, ge=10, description="recent rows compared")
    drift_every: int = Field(default=50, ge=1, description="rows between drift updates")
    drift_min_interval_s: float = Field(
        default=1.0, ge=0.0, description="at most one drift update per this many seconds"
    )
    drift_large_window: int = Field(default=1000, ge=2)
    drift_p_value: float = Field(default=0.05, gt=0.0, lt=1.0)
    drift_wasserstein: float = Field(default=0.1, gt=0.0)
    drift_psi: float = Field(default=0.2, gt=0.0)
    feedback_window: int = Field(default=500, ge=1, description="labelled predictions scored")
    api_keys_file: str = Field(
        default="",
        description="API keys (mlops keys create); empty: $MLOPS_HOME/api_keys.json",
    )
    rate_limit_per_key: float = Field(
        default=0.0,
        ge=0.0,
        description=(
            "requests/s per API key (per client address without a key) to classify, "
            "predict, feedback and jobs/submit, per worker; over it: 429 + Retry-After "
            "(0: no limit)"
        ),
    )
    rate_limit_burst: int = Field(
        default=0, ge=0, description="requests a client may send at once (0: one second's worth)"
    )
    require_api_key: bool = Field(
        default=False,
        description="prediction, feedback, stats and metadata need a key too (admin always does)",
    )
    prediction_log_url: str = Field(
        default="",
        description="shared prediction/feedback log: empty = SQLite at "
        "$MLOPS_HOME/predictions.db; sqlite:///PATH; redis://HOST:PORT/DB for several hosts",
    )
    prediction_log_sample: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of predictions recorded in the log"
    )
    prediction_log_capacity: int = Field(
        default=20_000, ge=1, description="records a worker buffers; beyond, dropped (counted)"
    )
    prediction_log_retention_days: float = Field(
        default=30.0, gt=0.0, description="records older than this are pruned"
    )
    jobs_max_bytes: int = Field(
        default=200 * 2**20, ge=1024, description="largest file a batch job accepts (413 above)"
    )
    jobs_max_active: int = Field(
        default=4, ge=1, description="queued + running batch jobs per model; 429 above"
    )
    jobs_lease_s: float = Field(
        default=30.0,
        gt=0.0,
        description="a running job not heard from for this long is taken over by another worker",
    )
    jobs_retention_days: float = Field(
        default=7.0, gt=0.0, description="finished jobs and their files are removed after this"
    )
    jobs_chunk_rows: int = Field(
        default=0, ge=0, description="rows per chunk of a batch job (0: mlops score's default)"
    )
    challenger_alias: str = Field(
        default="challenger", description="alias the live challenger follows; empty: none"
    )
    challenger_weight: float = Field(
        default=0.0, ge=0.0, le=100.0, description="percent of live traffic to the challenger"
    )
    shadow_alias: str = Field(
        default="", description="alias a shadow variant follows (scored, never answers)"
    )
    shadow_timeout_s: float = Field(
        default=5.0, gt=0.0, description="a shadow batch waiting longer is dropped"
    )
    reload_interval_s: float = Field(
        default=10.0, ge=0.0, description="seconds between alias checks; 0: admin reload only"
    )
    routing_header: str = Field(
        default="x-routing-key", min_length=1, description="request key for sticky routing"
    )
    ui: bool = Field(
        default=True, description="the web UI at /ui (pages that call this service's APIs)"
    )
    model_source: Literal["store", "mlflow"] = Field(
        default="store",
        description="store: aliases from the local BentoML store's labels; mlflow: from the "
        "MLflow registry (MLOPS_TRACKING_URI), pulling missing versions into the local store",
    )

    @field_validator("prediction_log_url")
    @classmethod
    def _known_log_url(cls, url: str) -> str:
        if url and not url.startswith(("sqlite:///", "redis://", "rediss://", "unix://")):
            raise ValueError(
                f"{url!r} is neither sqlite:///PATH nor redis://HOST:PORT/DB "
                "(empty: SQLite under MLOPS_HOME)"
            )
        return url

    @model_validator(mode="after")
    def _aliases_are_distinct(self) -> ServingSettings:
        aliases = [a for a in (self.model_alias, self.challenger_alias, self.shadow_alias) if a]
        if len(set(aliases)) != len(aliases):
            raise ValueError(
                "model_alias, challenger_alias and shadow_alias must name different aliases"
            )
        return self

    def variants(self) -> list[Variant]:
        """The variants this service follows: always the champion, then what is configured."""
        variants = [Variant(name=CHAMPION, alias=self.model_alias)]
        if self.challenger_alias:
            variants.append(
                Variant(name=CHALLENGER, alias=self.challenger_alias, weight=self.challenger_weight)
            )
        if self.shadow_alias:
            variants.append(Variant(name=SHADOW, alias=self.shadow_alias, mode=VariantMode.SHADOW))
        return variants

    def drift_config(self) -> DriftConfig:
        return DriftConfig(
            large_window=self.drift_large_window,
            p_value_threshold=self.drift_p_value,
            wasserstein_threshold=self.drift_wasserstein,
            psi_threshold=self.drift_psi,
        )


class TextServingSettings(ServingSettings):
    """The text service's settings (``MLOPS_TEXT_SERVE_*``), apart from the tabular one's.

    Every :class:`ServingSettings` field exists here too under the text prefix, so both
    services can run side by side from one shell with their own models and limits.
    Batching defaults come from measured batch timings (README, "Text service").
    """

    model_config = SettingsConfigDict(env_prefix="MLOPS_TEXT_SERVE_", frozen=True, extra="ignore")

    model_name: str = Field(default="sst2-sentiment", min_length=1)
    max_batch_size: int = Field(default=64, gt=1, description="adaptive batching ceiling")
    max_latency_ms: int = Field(
        default=1000, ge=1, description="a request queued longer for its batch gets 503"
    )
    max_instances: int = Field(default=64, ge=1, description="texts per request")
    max_text_chars: int = Field(default=2000, ge=1, description="longer texts get 400")
    forward_max_tokens: int = Field(
        default=0,
        ge=0,
        description="padded tokens per forward pass; 0: 256 on CPU (128 for ONNX Runtime's "
        "side-by-side passes), a whole batch on a GPU",
    )
    device: Literal["auto", "cuda", "mps", "cpu"] = Field(
        default="auto", description="auto: CUDA when torch sees it, else CPU"
    )
    gpus: int = Field(default=0, ge=0, description="GPUs BentoML assigns to the service")
    torch_threads: int = Field(
        default=0, ge=0, description="CPU threads for torch / ONNX Runtime (0: their default)"
    )
    gil_switch_ms: float = Field(
        default=0.5,
        ge=0.0,
        le=100.0,
        description="Python's thread switch interval in a process that holds the model "
        "(0: Python's 5 ms)",
    )
    backend: Literal["torch", "onnx", "onnx-int8"] = Field(
        default="torch",
        description="torch; ONNX Runtime (exported on first load); ONNX Runtime int8",
    )
    onnx_side_by_side: bool = Field(
        default=True,
        description="ONNX Runtime spends its threads (TORCH_THREADS, 0: every usable core) "
        "on that many forward passes at once, one thread each, instead of on one pass at a "
        "time (1.5x the texts/s on 2 cores)",
    )
    precision: Literal["fp32", "tf32", "bf16", "fp16"] = Field(
        default="fp32",
        description="torch backend on CUDA: TF32 matmuls or bf16/fp16 autocast, refused when "
        "accuracy on the stored test split drops by more than PRECISION_MAX_ACCURACY_DROP",
    )
    precision_max_accuracy_drop: float = Field(default=0.003, ge=0.0, lt=1.0)
    torch_compile: Literal["off", "default", "reduce-overhead"] = Field(
        default="off",
        description="torch backend: torch.compile the model with dynamic shapes before the "
        "warm-up (default: Inductor kernels, 1.07-1.10x the texts/s at batch 64 on 2 CPU cores; "
        "reduce-overhead: also CUDA graphs, CUDA only); off: eager",
    )
    int8_max_accuracy_drop: float = Field(
        default=0.01,
        ge=0.0,
        lt=1.0,
        description="onnx-int8 is refused when it loses more accuracy on the stored test split",
    )
    topology: Literal["auto", "single", "split"] = Field(
        default="auto",
        description="single: each worker holds the model; split: HTTP front workers call a "
        "model runner (bentoml.depends) that owns it; auto: the one measured fastest on "
        "this kind of device (single on CPU; single on CUDA until a GPU run shows otherwise)",
    )
    workers: int = Field(
        default=0,
        ge=0,
        description="HTTP workers; 0: 1 when single, one per core the runner leaves (up to "
        "8) when split",
    )
    runner_workers: int = Field(
        default=0, ge=0, description="model runner workers when split; 0: one per GPU, else 2"
    )
    runner_max_batch_size: int = Field(
        default=0,
        ge=0,
        description="texts per runner batch when split; 0: 4x MAX_BATCH_SIZE on CUDA, else it",
    )
    runner_timeout_s: int = Field(
        default=600, ge=1, description="front -> runner call limit (covers a first load)"
    )
    runner_idle_evict_s: float = Field(
        default=600.0, gt=0.0, description="the runner drops a version unused this long"
    )
    warmup_batch_sizes: tuple[int, ...] = Field(
        default=(1, 8, 32, 64), description="batch sizes run before /readyz answers 200"
    )
    warmup_rounds: int = Field(default=2, ge=1, description="passes per warm-up batch size")
    cache: bool = Field(default=False, description="in-process LRU+TTL response cache")
    cache_size: int = Field(default=10_000, ge=1, description="responses the cache keeps")
    cache_ttl_s: float = Field(default=600.0, gt=0.0, description="seconds a response stays")

    @model_validator(mode="after")
    def _warmup_sizes_are_positive(self) -> TextServingSettings:
        if not self.warmup_batch_sizes or min(self.warmup_batch_sizes) < 1:
            raise ValueError("warmup_batch_sizes: give one or more batch sizes >= 1")
        if self.torch_compile != "off" and self.backend != "torch":
            raise ValueError(
                f"torch_compile: {self.torch_compile} compiles the torch backend, and backend "
                f"is {self.backend}; set torch_compile to off"
            )
        return self
