"""Typed configuration: embedded defaults < TOML file < environment < CLI flags.

Every section is a msgspec Struct with `forbid_unknown_fields=True`, so a typo in a
config file or an environment variable is a startup error, not a silent default.

Environment overrides use `AFTERCARE_<SECTION>__<FIELD>`, e.g.
`AFTERCARE_SERVER__PORT=50052` or `AFTERCARE_CLASSIFIER_BATCHER__MAX_BATCH_SIZE=64`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from server.errors import InvalidInput

ENV_PREFIX = "AFTERCARE_"


DEMO_INTENT_TAGS = {
    "order_status": "tracking", "cancel_order": "cancellation", "change_order": "change order",
    "return_item": "returns", "refund_status": "refunds", "damaged_item": "damaged",
    "wrong_item": "wrong item", "missing_package": "lost parcel", "warranty_claim": "warranty",
    "change_address": "address", "delivery_options": "delivery", "shipping_cost": "costs",
    "payment_problem": "payment issue", "invoice_request": "invoice", "account_access": "login",
    "delete_account": "privacy", "promo_code": "promo code", "complaint": "contact",
    "talk_to_human": "contact", "newsletter": "newsletter",
    "duplicate_charge": "billing", "shipping_destinations": "destinations",
    "price_match": "price match", "gift_card": "gift card", "subscription": "subscription",
}


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ServerConfig(_Section):
    host: str = "0.0.0.0"
    port: int = 50051  # 0 = pick a free port (tests)
    grace_s: float = 10.0  # how long in-flight calls may finish on shutdown
    max_message_bytes: int = 4 * 1024 * 1024
    reflection: bool = True


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


class BatcherConfig(_Section):
    max_batch_size: int = 32
    max_queue_delay_ms: float = 2.0
    max_queue_size: int = 2048
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
    # Help-center tag per intent: Respond ranks articles with that tag first (the
    # embedding alone ranks short messages loosely). Defaults fit the demo shop.
    intent_tags: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEMO_INTENT_TAGS))
    intent_tag_boost: float = 0.15


class RecordsConfig(_Section):
    path: str = "var/aftercare.sqlite"
    queue_size: int = 10_000


class PolicyConfig(_Section):
    path: str = ""  # "" = the shipped default policy


class GenerationConfig(_Section):
    generator: str = "composer"  # composer | onnx-lm
    lm_model: str = ""  # model repository name of a text-generation-with-past export
    max_new_tokens: int = 160
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 0.9


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


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Build the config from defaults, an optional TOML file, env and explicit overrides."""
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise InvalidInput(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"config file {path} is not valid TOML: {exc}") from exc
    data = _merge(data, _env_overrides(os.environ if environ is None else environ))
    if overrides:
        data = _merge(data, overrides)
    try:
        # strict=False lets env strings ("50052", "true") convert to typed fields.
        return msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"invalid configuration: {exc}") from exc
