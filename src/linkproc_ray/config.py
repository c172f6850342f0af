"""All settings in one typed object, read from ``LINKPROC_*`` environment variables.

The ingress reads them once and hands them, as plain data, to every actor it
creates, so a cluster runs with one consistent configuration.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from linkproc_ray.errors import ConfigError

NAMESPACE = "linkproc"
"""The Ray namespace of every named actor this project creates."""


class Settings(BaseSettings):
    """Every tunable of the system; a wrong value fails at start naming the setting."""

    model_config = SettingsConfigDict(env_prefix="LINKPROC_", extra="ignore")

    data_dir: Path = Field(default=Path(".linkproc"), description="Where each org's SQLite files live.")
    jwt_secret: str | None = Field(default=None, description="HS256 secret; generated under data_dir if unset.")
    jwt_algorithms: str = Field(default="HS256", description="Comma-separated accepted JWT algorithms.")
    jwt_public_key_file: Path | None = Field(default=None, description="PEM public key for RS256/ES256.")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # --- production JWT keys (auth.py): RS*/ES* public keys, picked by the token's `kid` ---
    jwt_public_keys_dir: Path | None = Field(
        default=None,
        validate_default=True,
        description="Folder of <kid>.pem public keys for RS*/ES*; a token's kid header picks one (rotation).",
    )

    @field_validator("jwt_public_keys_dir")
    @classmethod
    def _keys_match_algorithms(cls, value: Path | None, info: Any) -> Path | None:
        # Checked here, on plain settings, so a bad combination fails at start;
        # the key files themselves are read where tokens are verified (the ingress).
        algorithms = info.data.get("jwt_algorithms")
        if algorithms is None:  # already reported by its own validator
            return value
        asymmetric = [a for a in algorithms.split(",") if not a.startswith("HS")]
        has_file = info.data.get("jwt_public_key_file") is not None
        if asymmetric and len(asymmetric) != len(algorithms.split(",")):
            raise ValueError(
                f"LINKPROC_JWT_ALGORITHMS={algorithms!r} mixes a shared secret (HS*) with public keys; choose one"
            )
        if asymmetric and value is None and not has_file:
            raise ValueError(
                f"{','.join(asymmetric)} needs public keys: set LINKPROC_JWT_PUBLIC_KEYS_DIR "
                "(<kid>.pem files) or LINKPROC_JWT_PUBLIC_KEY_FILE"
            )
        if value is not None and has_file:
            raise ValueError("set LINKPROC_JWT_PUBLIC_KEYS_DIR or LINKPROC_JWT_PUBLIC_KEY_FILE, not both")
        if value is not None and not asymmetric:
            raise ValueError("public keys are configured but LINKPROC_JWT_ALGORITHMS accepts no RS*/ES* algorithm")
        return value.expanduser().resolve() if value is not None else None

    fetch_allow_hosts: str = Field(default="", description="Comma-separated host or host:port the SSRF guard opens.")
    fetch_timeout: float = Field(default=15.0, gt=0)
    fetch_max_bytes: int = Field(default=5_000_000, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    fetch_concurrency: int = Field(default=8, ge=1)
    fetch_per_host: int = Field(default=2, ge=1, description="Fetches at once to one host name, per processor.")
    summarize_concurrency: int = Field(default=3, ge=1)
    max_attempts: int = Field(default=3, ge=1)
    idle_ttl: float = Field(default=600.0, gt=0, description="Seconds an idle org actor lives on.")
    sweep_interval: float = Field(default=30.0, gt=0)
    # benchmarks/churn.py: an ingress replica grows 9-41 KB per org wake (Ray keeps its
    # handle to every org actor it called or created, dead ones too), so 10,000 is
    # 0.1-0.4 GB before Serve replaces it; at 10,000 orgs' busiest hour, every ~2 hours.
    ingress_recycle_after: int = Field(
        default=10_000,
        ge=1,
        description=(
            "Org actors an ingress replica holds handles to before it asks Serve to replace it: "
            "one per org wake, two when a save woke the processor alongside the backend."
        ),
    )
    # benchmarks/storm.py: two processors started early (each the first of a storm's saves)
    # cost the other 28 orgs' saves ~1.5 s at p50; a lone wake gains 0.3 s (adapters/actors.py Prewakes).
    prewakes: int = Field(
        default=1,
        ge=0,
        description=(
            "A save wakes a cold org's processor alongside its backend while fewer than this many other "
            "orgs are waking through the same ingress replica (1: lone wakes only; 0: never)."
        ),
    )
    summarizer: Literal["extractive", "vllm", "openai", "serve"] = Field(
        default="extractive",
        description=(
            "extractive: batch CPU tasks, no model; vllm / openai: the app's Summarizer deployment; "
            "serve: a deployment of your own (summarizer_deployment in serve_app_name) with summarize(SummaryRequest)."
        ),
    )
    summarizer_deployment: str = Field(default="Summarizer", description="Serve deployment name of the summarizer.")
    summarizer_timeout: float = Field(default=30.0, gt=0)
    serve_app_name: str = "linkproc"
    # Org actors are I/O-bound; a larger reservation per actor starves the
    # parse tasks (10 orgs at 0.05 reserved a whole CPU of a 2-CPU node).
    actor_num_cpus: float = Field(default=0.01, ge=0, le=1, description="CPU share reserved per org actor.")
    # Ray places an actor by what it reserves, and memory is what fills a node
    # (docs/cluster.md). Without a reservation Ray kept every org of a 2-node
    # cluster on the ingress's node (benchmarks/churn.py --worker-nodes 2).
    actor_memory_mb: int = Field(
        default=64, ge=0, description="Memory Ray's scheduler reserves per org actor, in MiB (about its PSS)."
    )
    parse_num_cpus: float = Field(default=0.5, gt=0, le=8, description="CPU share of one parsing task.")
    parse_priority: Literal["nice", "idle", "normal"] = Field(
        # idle against nice 19, full burst (benchmarks/README.md): saves accepted
        # 49 -> 70 per s, CPU per link 4.2x -> 3.5x the bare pipeline's.
        default="idle",
        description="How batch work (parse workers, processors) yields the CPU to saves and sync: SCHED_IDLE, nice 19, or as is.",
    )

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # Actors run in other processes with other working directories.
        return value.expanduser().resolve()

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: str) -> str:
        algorithms = [a.strip() for a in value.split(",") if a.strip()]
        allowed = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"}
        bad = [a for a in algorithms if a not in allowed]
        if not algorithms or bad:
            raise ValueError(f"unsupported JWT algorithm(s) {bad or value!r}; choose from {sorted(allowed)}")
        return ",".join(algorithms)

    @property
    def algorithms(self) -> list[str]:
        return self.jwt_algorithms.split(",")

    def org_dir(self, org: str) -> Path:
        return self.data_dir / "orgs" / org

    def to_actor_args(self) -> dict[str, Any]:
        """The settings as plain data for an actor's constructor."""
        return self.model_dump(mode="json")

    # --- the vllm and openai summarizers (read only when chosen) ---
    vllm_model: str | None = Field(default=None, description="vLLM model: a local folder or a hub id.")
    vllm_model_name: str | None = Field(default=None, description="The summaries' model name; default vllm_model.")
    vllm_dtype: str = Field(default="auto", description="Weights dtype; float32 on CPUs without bf16 support.")
    vllm_max_model_len: int | None = Field(default=None, gt=0, description="Context length; default the model's.")
    vllm_gpu_memory_utilization: float = Field(default=0.9, gt=0, le=1)
    vllm_tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs per replica; set num_gpus to match.")
    vllm_kv_cache_gib: float | None = Field(default=None, gt=0, description="KV cache size; needed on CPU.")
    vllm_enforce_eager: bool = Field(default=False, description="Skip compilation: faster start, slower decoding.")
    openai_base_url: str | None = Field(default=None, description="e.g. http://host:8000/v1 (vllm serve).")
    openai_model: str | None = None
    openai_api_key: str | None = None


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; raises :class:`ConfigError` naming a bad one."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"LINKPROC_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None


def jwt_secret(settings: Settings) -> str:
    """The HS256 secret: configured, else generated once and kept (0600) under the data dir."""
    if settings.jwt_secret:
        return settings.jwt_secret
    path = settings.data_dir / "jwt_secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    # Write aside, then link into place: the file appears whole or not at all,
    # and if another process won the race everyone uses its secret.
    scratch = path.with_name(f".jwt_secret.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    try:
        os.link(scratch, path)
    except FileExistsError:
        secret = path.read_text().strip()
    finally:
        scratch.unlink()
    return secret
