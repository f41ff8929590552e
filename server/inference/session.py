"""onnxruntime session factory: provider choice, threads, and what was really used.

CUDA first when the installed onnxruntime offers it (the `gpu` extra), CPU otherwise.
onnxruntime-gpu silently falls back to CPU when CUDA libraries are missing, so the
providers in force are read back from the session after creation, never assumed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def choose_providers(requested: Sequence[str] = ()) -> list[str]:
    """Requested providers that this onnxruntime build has, else CUDA (if any) then CPU."""
    available = ort.get_available_providers()
    if requested:
        chosen = [p for p in requested if p in available]
        missing = [p for p in requested if p not in available]
        if missing:
            log.warning("providers not available in this onnxruntime build: %s", missing)
    else:
        chosen = [p for p in (CUDA,) if p in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def create_session(
    model_path: Path,
    providers: Sequence[str] = (),
    intra_op_threads: int = 0,
    inter_op_threads: int = 1,
    allow_spinning: bool = True,
) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if not allow_spinning:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if intra_op_threads > 0:
        opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = max(1, inter_op_threads)
    session = ort.InferenceSession(
        str(model_path), sess_options=opts, providers=choose_providers(providers)
    )
    used = session.get_providers()
    log.info("loaded %s with providers %s", model_path, used)
    return session


def providers_in_use(session: ort.InferenceSession) -> list[str]:
    return list(session.get_providers())
