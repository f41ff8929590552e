"""Typed configuration: embedded defaults < TOML files < environment < CLI flags.

Every section is a msgspec Struct with `forbid_unknown_fields=True`, so a typo in a
config file or an environment variable is a startup error, not a silent default.

Environment overrides use `AFTERCARE_<SECTION>__<FIELD>`, e.g.
`AFTERCARE_SERVER__PORT=50052` or `AFTERCARE_CLASSIFIER_BATCHER__MAX_BATCH_SIZE=64`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec

from server.errors import InvalidInput

ENV_PREFIX = "AFTERCARE_"


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TlsConfig(_Section):
    """TLS on the gRPC port when cert_file and key_file are set; client_ca_file set =
    mutual TLS (clients must present a certificate signed by that CA). SIGHUP re-reads
    the files, for certificate rotation without a restart."""

    cert_file: str = ""
    key_file: str = ""
    client_ca_file: str = ""


class ServerConfig(_Section):
    host: str = "0.0.0.0"
    port: int = 50051  # 0 = pick a free port (tests)
    grace_s: float = 10.0  # how long in-flight calls may finish on shutdown
    max_message_bytes: int = 4 * 1024 * 1024
    max_concurrent_rpcs: int = 0  # 0 = unlimited; else grpc sheds the excess itself
    # Close each client connection after this long (grpc adds +-10% jitter): a client
    # keeps one HTTP/2 connection per server, so without it a replica added later gets
    # no share of the existing clients. 0 = never (one process has nothing to balance).
    max_connection_age_ms: int = 0
    # Calls still open on a connection past its age may finish for this long, then are
    # cancelled (new calls go to a new connection at once).
    max_connection_age_grace_ms: int = 30_000
    reflection: bool = True
    tls: TlsConfig = msgspec.field(default_factory=TlsConfig)


class ModelsConfig(_Section):
    repository: str = "models/repository"
    classifier: str = "intent-classifier"
    embedder: str = "minilm-embedder"
    classifier_version: int = 0  # 0 = latest on disk
    embedder_version: int = 0
    providers: list[str] = []  # [] = CUDA when available, else CPU
    # Threads inside one run. 1 with one concurrent batch per core (the batchers'
    # `concurrency`) served 1.0-1.3x raw onnxruntime's best throughput here, against
    # 0.83-0.91x with one batch at a time on all cores. 0 = onnxruntime's default.
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    # onnxruntime's pool threads spin while waiting for work: ~0.3 ms less per small
    # batch here (2 cores). Turn off when other processes share the cores.
    allow_spinning: bool = True
    max_length: int = 128  # tokens the encoder sees; longer input is truncated
    max_input_tokens: int = 512  # longer input is rejected (INVALID_ARGUMENT)
    max_text_bytes: int = 8192
    max_texts: int = 256  # per Embed call
    verify_checksums: bool = True
    # Former active versions per model kept loaded (READY) for a fast rollback.
    keep_ready: int = 1


class BatcherConfig(_Section):
    max_batch_size: int = 32
    max_queue_delay_ms: float = 2.0
    max_queue_size: int = 2048
    # Admission by time: refuse at once (RESOURCE_EXHAUSTED + retry-after-ms) when the
    # expected queue wait, queue depth over the measured service rate, exceeds this or
    # the caller's deadline. 0 = only the queue length bounds admission.
    max_queue_time_ms: float = 100.0
    # Release a partial batch at once when no batch is running: waiting only pays
    # off while the model is busy, and it costs latency at low load.
    idle_dispatch: bool = True
    # Batches of one model that run at once (sessions are thread-safe); 0 = one per
    # CPU core, which with intra_op_threads=1 keeps every core busy on small batches.
    concurrency: int = 0


class DataConfig(_Section):
    dir: str = ""  # "" = the generated demo shop
    demo_dir: str = "var/demo-shop"
    demo_size: str = "S"
    demo_seed: int = 7
    shared_dir: str = ""  # "" = $AFTERCARE_SHARED_DATA or ../shared/data when present
    use_shared: bool = True
    quarantine_dir: str = "var/quarantine"
    # TOML file mapping an export's files, column names and date formats onto the
    # schema (docs/data-schema.md, "Column mapping"); "" = the schema's own names.
    mapping: str = ""
    currency: str = ""  # default for rows without a currency when shop.json names none


class RetrievalConfig(_Section):
    index_dir: str = "var/index"
    m: int = 16
    ef_construction: int = 200
    ef: int = 64
    default_top_k: int = 5
    # What Respond may quote to a customer: the shop's own articles and policies, not
    # agent-facing guidelines or imported FAQ templates (Search still returns those).
    respond_kinds: list[str] = msgspec.field(default_factory=lambda: ["article", "policy"])
    respond_min_score: float = 0.3  # cosine; weaker passages are not quoted
    respond_passages: int = 3
    # Respond ranks up the documents that fit the intent (the embedding alone ranks
    # short messages loosely): learned per shop from the documents' titles and tags
    # (server/knowledge/retrieval/affinity.py), by cosine + intent_tag_boost * affinity.
    intent_affinity: bool = True
    affinity_per_intent: int = 3  # documents ranked up per intent
    affinity_min_weight: float = 0.25  # p(intent | title, tags) below this: no boost
    # Optional pins: help-center tag per intent, ranked up at the full boost.
    intent_tags: dict[str, str] = {}
    intent_tag_boost: float = 0.15


class RecordsConfig(_Section):
    # "" = SQLite at `path`; "sqlite:///path" likewise; "postgresql://user@host:port/db"
    # = PostgreSQL, shared by many replicas (libpq URL; PGPASSWORD etc. apply). Wins
    # over `path` when set.
    url: str = ""
    path: str = "var/aftercare.sqlite"
    pool_size: int = 4  # PostgreSQL connections (and database threads) per replica
    # psycopg prepares statements it runs often; false behind a pooler in transaction
    # mode (PgBouncer before 1.21), where a prepared statement may meet another backend.
    prepared_statements: bool = True
    queue_size: int = 10_000
    # NORMAL: what a caller was told survives the process being killed; FULL: also
    # power loss (an fsync per group commit).
    synchronous: str = "NORMAL"


class PolicyConfig(_Section):
    path: str = ""  # "" = the shipped default policy


class GenerationConfig(_Section):
    generator: str = "composer"  # composer | onnx-lm
    lm_model: str = ""  # model repository name of a text-generation-with-past export
    max_new_tokens: int = 160
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 0.9
    # An LM that has produced nothing after this long (or fails first) is replaced by
    # the grounded composer for that answer; recorded in the decision's `fallbacks`.
    first_chunk_timeout_s: float = 2.0


class RateLimitConfig(_Section):
    rate_per_s: float = 0.0  # 0 = unlimited
    burst: float = 0.0  # 0 = rate_per_s


class ApiKeyConfig(_Section):
    id: str
    sha256: str  # hex digest of the key; the key itself is never configured
    roles: list[str] = []
    rate_per_s: float = 0.0  # 0 = the roles' limit
    burst: float = 0.0


class MtlsIdentityConfig(_Section):
    common_name: str
    roles: list[str] = []
    rate_per_s: float = 0.0
    burst: float = 0.0


class JwtConfig(_Section):
    hs256_secret_file: str = ""
    jwks_file: str = ""  # RS256 / ES256 public keys
    issuer: str = ""  # "" = not checked
    audience: str = ""  # "" = not checked
    leeway_s: float = 30.0  # clock skew allowed on exp / nbf
    roles_claim: str = "roles"


class AuthConfig(_Section):
    """Off by default for local use. On: every call but health and reflection needs
    an API key (`x-api-key`), a JWT (`authorization: Bearer`) or a mapped mTLS
    client certificate; roles decide which services it may call (server/access/roles.py)."""

    enabled: bool = False
    api_keys: list[ApiKeyConfig] = []
    jwt: JwtConfig = msgspec.field(default_factory=JwtConfig)
    mtls: list[MtlsIdentityConfig] = []
    rate_limits: dict[str, RateLimitConfig] = {}  # per role: client, agent, admin


class ConversationConfig(_Section):
    # A conversation idle longer than this starts over (state expires).
    idle_timeout_s: float = 1800.0
    # How often the state of conversations idle past the timeout is deleted (0 = never).
    purge_interval_s: float = 600.0
    # Embedding similarity of the message and the titles of the customer's order lines,
    # for product mentions no title word matches.
    title_similarity: bool = True


class FlowsConfig(_Section):
    paths: list[str] = []  # extra flow files (docs/flows.md), loaded after the shipped ones
    use_shared: bool = True  # the ABCD subflows, when the shared data is present
    abcd_dir: str = ""  # "" = <data.shared_dir or ../shared/data>/abcd


class ChannelConfig(_Section):
    # assist: answers are drafts for a human agent to review (Final.route = "draft").
    mode: Literal["auto", "assist"] = "auto"


class ChannelsConfig(_Section):
    chat: ChannelConfig = msgspec.field(default_factory=ChannelConfig)
    email: ChannelConfig = msgspec.field(default_factory=ChannelConfig)
    social: ChannelConfig = msgspec.field(default_factory=ChannelConfig)

    def mode(self, channel: str) -> str:
        cfg = getattr(self, channel, None)
        return cfg.mode if isinstance(cfg, ChannelConfig) else "auto"


class MetricsConfig(_Section):
    host: str = "0.0.0.0"
    port: int = 9464  # /metrics, /dashboard, /api/*; 0 = off (and no instrumentation)


class TracingConfig(_Section):
    enabled: bool = False
    service_name: str = "aftercare"
    # otlp: OTLP/gRPC, configured by the standard OTEL_EXPORTER_OTLP_* environment;
    # console: stdout; none: spans only for processors added in code (and trace ids).
    exporter: str = "otlp"


class KpisConfig(_Section):
    attribution_days: float = 7.0  # orders this long after a conversation count for it


class DriftConfig(_Section):
    window: int = 2000  # live classifications per model version; 0 = off
    evaluate_every: int = 256  # re-check the thresholds every this many classifications
    psi: float = 0.25
    top_probability_drop: float = 0.10
    oos_rate_increase: float = 0.10
    centroid_cosine_min: float = 0.90
    min_samples: int = 50


class TrafficConfig(_Section):
    # The shadow lane: jobs that do not fit the queue are dropped (and counted), so a
    # slow candidate never delays live answers.
    shadow_queue_size: int = 64
    shadow_workers: int = 2


class Config(_Section):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    models: ModelsConfig = msgspec.field(default_factory=ModelsConfig)
    classifier_batcher: BatcherConfig = msgspec.field(default_factory=BatcherConfig)
    embedder_batcher: BatcherConfig = msgspec.field(default_factory=BatcherConfig)
    data: DataConfig = msgspec.field(default_factory=DataConfig)
    retrieval: RetrievalConfig = msgspec.field(default_factory=RetrievalConfig)
    records: RecordsConfig = msgspec.field(default_factory=RecordsConfig)
    policy: PolicyConfig = msgspec.field(default_factory=PolicyConfig)
    generation: GenerationConfig = msgspec.field(default_factory=GenerationConfig)
    conversation: ConversationConfig = msgspec.field(default_factory=ConversationConfig)
    flows: FlowsConfig = msgspec.field(default_factory=FlowsConfig)
    channels: ChannelsConfig = msgspec.field(default_factory=ChannelsConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    tracing: TracingConfig = msgspec.field(default_factory=TracingConfig)
    kpis: KpisConfig = msgspec.field(default_factory=KpisConfig)
    drift: DriftConfig = msgspec.field(default_factory=DriftConfig)
    traffic: TrafficConfig = msgspec.field(default_factory=TrafficConfig)
    executor_threads: int = 4  # CPU work off the event loop (tokenize, ONNX, kernels)
    log_level: str = "INFO"


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`AFTERCARE_SECTION__FIELD=value` -> {"section": {"field": "value"}}."""
    out: dict[str, Any] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        path = key[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        leaf: Any = value
        if value.startswith("[") and value.endswith("]"):
            leaf = [v.strip() for v in value[1:-1].split(",") if v.strip()]
        node[path[-1]] = leaf
    return out


def _read_toml(path: str | Path) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise InvalidInput(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from exc


def load_config(
    path: str | Path | Sequence[str | Path] | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the config from defaults, optional TOML files, env and explicit overrides.

    Several files merge in order, later keys winning: e.g. a deployment's config map,
    then the `[auth]` part from a secret."""
    data: dict[str, Any] = {}
    for file in [path] if isinstance(path, str | Path) else path or ():
        if file:
            data = _merge(data, _read_toml(file))
    data = _merge(data, _env_overrides(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, overrides)
    try:
        # strict=False lets env strings ("50052", "true") convert to typed fields.
        return msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid configuration: {exc}") from exc
