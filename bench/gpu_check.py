"""`make gpu-check`: on a machine with an NVIDIA GPU, prove the models really run on CUDA.

Steps: find a GPU (nvidia-smi), install the `gpu` extra when this onnxruntime has no
CUDA provider, build or reuse the default models, start the server with CUDA first,
check that both served sessions report CUDAExecutionProvider (ListModels shows
`session.get_providers()`), hot-swap the classifier to a second version and check it
again, then run `aftercare bench classify` there and print its JSON (last line).
Without a GPU it says so and exits 0. Meant to finish within five minutes.

Note: `get_providers()` lists the providers a session registered; onnxruntime may
still place single int8 nodes on the CPU, so the bench figures are the real verdict.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CUDA = "CUDAExecutionProvider"
ROOT = Path(__file__).resolve().parents[1]
GPU_SPEC = "onnxruntime-gpu[cuda,cudnn]>=1.18"  # the `gpu` extra, with pip's CUDA libs


def nvidia_gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False)
    return [line for line in done.stdout.splitlines() if line.startswith("GPU")]


def cuda_available() -> bool:
    code = "import onnxruntime as o; print('CUDAExecutionProvider' in o.get_available_providers())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() == "True"


def install_gpu_runtime() -> None:
    """onnxruntime and onnxruntime-gpu share one package folder: swap one for the other."""
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "onnxruntime"],
                   check=False)
    subprocess.run([*pip, GPU_SPEC], check=True)


def _providers(port: int) -> dict[str, list[str]]:
    import grpc

    from aftercare.v1 import admin_pb2, admin_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        models = admin_pb2_grpc.AdminStub(channel).ListModels(
            admin_pb2.ListModelsRequest(), timeout=30).models
    return {f"{m.name}/{m.version}": list(m.providers) for m in models if m.state == "ACTIVE"}


def _activate(port: int, name: str, version: int) -> None:
    import grpc

    from aftercare.v1 import admin_pb2, admin_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        admin_pb2_grpc.AdminStub(channel).ActivateModel(
            admin_pb2.ActivateModelRequest(name=name, version=version), timeout=300)


def check(seconds: float) -> dict[str, Any]:
    from bench import classify
    from bench.serverproc import running_server
    from bench.swap import CLASSIFIER, link_repository
    from models.cli import ensure_default_models

    repo = ROOT / "models" / "repository"
    ensure_default_models(repo)
    os.environ["AFTERCARE_MODELS__PROVIDERS"] = f"[{CUDA}]"  # the child servers inherit it
    tmp = Path(tempfile.mkdtemp(prefix="aftercare-gpu-check-"))
    try:
        env = {"AFTERCARE_MODELS__REPOSITORY": str(link_repository(repo, tmp / "repo")),
               "AFTERCARE_MODELS__CLASSIFIER_VERSION": "1",
               "AFTERCARE_RECORDS__PATH": str(tmp / "records.sqlite")}
        with running_server(env) as port:
            before = _providers(port)
            _activate(port, CLASSIFIER, 2)
            after = _providers(port)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ok = all(p[:1] == [CUDA] for p in before.values()) and len(before) == 2
    swapped = after.get(f"{CLASSIFIER}/2", [])[:1] == [CUDA]
    return {"providers": before, "providers_after_swap": after, "cuda_ok": ok,
            "cuda_after_swap_ok": swapped,
            "bench_classify": classify.run("classify", seconds) if ok else None}


def main() -> int:
    gpus = nvidia_gpus()
    if not gpus:
        print("gpu-check: no NVIDIA GPU on this machine (nvidia-smi missing or lists none); "
              "nothing to check")
        return 0
    print("gpu-check: " + "; ".join(gpus), flush=True)
    if not cuda_available():
        print(f"gpu-check: installing {GPU_SPEC}", flush=True)
        install_gpu_runtime()
        if not cuda_available():
            print("gpu-check: onnxruntime still has no CUDA provider", file=sys.stderr)
            return 1
    result = {"gpus": gpus, **check(float(os.environ.get("GPU_CHECK_SECONDS", "3")))}
    print(json.dumps(result, default=float))
    return 0 if result["cuda_ok"] and result["cuda_after_swap_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
