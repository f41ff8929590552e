"""`aftercare bench swap`: hot swaps under load, and memory over load/unload cycles.

A real server (child process) serves a throwaway repository whose classifier has
two versions (the served files, symlinked). Closed-loop Classify at concurrency 32:
first steady, then while 20 activations alternate between the two versions; then 50
load/unload cycles of a version with the server's RSS read before and after. The
last stdout line is one JSON object: `failed`, `p99_steady_ms`,
`p99_during_swaps_ms` (and their ratio), `swap_ms` (load+warm, and the swap itself:
server-side reference assignment and the Activate round trip), `rss_growth_mb`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import uvloop

from aftercare.v1 import admin_pb2, admin_pb2_grpc, support_pb2, support_pb2_grpc
from bench.classify import sample_texts
from bench.loadgen import closed_loop
from bench.serverproc import running_server
from server.config import load_config

CLASSIFIER = "intent-classifier"
EMBEDDER = "minilm-embedder"
_SWAP = re.compile(r"\(swap ([0-9.]+) ms")


def link_repository(source: Path, root: Path) -> Path:
    """Classifier v1 and v2 and embedder v1, all the served files, symlinked."""
    for name, versions in ((CLASSIFIER, (1, 2)), (EMBEDDER, (1,))):
        src = source / name / str(max(int(p.name) for p in (source / name).iterdir()
                                      if p.name.isdigit()))
        for version in versions:
            dst = root / name / str(version)
            dst.mkdir(parents=True)
            for entry in src.iterdir():
                if entry.name != "manifest.json":
                    (dst / entry.name).symlink_to(entry.resolve())
            manifest = json.loads((src / "manifest.json").read_text())
            manifest["version"] = version
            (dst / "manifest.json").write_text(json.dumps(manifest))
    return root


def child_rss_mb() -> float:
    """RSS of our `aftercare serve` child (found by parent pid and command line)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me and b"server.cli" in cmdline:
            pages = int((entry / "statm").read_text().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    return float("nan")


async def measure(port: int, seconds: float, swaps: int, cycles: int) -> dict[str, Any]:
    texts = sample_texts()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        support = support_pb2_grpc.SupportStub(channel)
        admin = admin_pb2_grpc.AdminStub(channel)
        versions: Counter[str] = Counter()

        async def call(i: int) -> None:
            resp = await support.Classify(
                support_pb2.ClassifyRequest(text=texts[i % len(texts)]), timeout=30)
            versions[resp.model_version] += 1

        await closed_loop(call, 8, 1.0)  # warm channel and server
        steady = await closed_loop(call, 32, seconds)
        t0 = time.perf_counter()
        await admin.LoadModel(admin_pb2.LoadModelRequest(name=CLASSIFIER, version=2),
                              timeout=300)
        load_ms = (time.perf_counter() - t0) * 1000
        rpc_ms: list[float] = []

        async def swapper() -> None:
            gap = seconds / (swaps + 1)
            for i in range(swaps):
                await asyncio.sleep(gap)
                t = time.perf_counter()
                await admin.ActivateModel(admin_pb2.ActivateModelRequest(
                    name=CLASSIFIER, version=2 if i % 2 == 0 else 1), timeout=60)
                rpc_ms.append((time.perf_counter() - t) * 1000)

        versions.clear()
        during, _ = await asyncio.gather(closed_loop(call, 32, seconds), swapper())
        seen = dict(versions)
        report = await admin.GetTrafficReport(
            admin_pb2.GetTrafficReportRequest(name=CLASSIFIER), timeout=30)
        server_swap = [float(m.group(1)) for e in report.events
                       if e.kind == "activated" and (m := _SWAP.search(e.detail))][-swaps:]

        rss_before = child_rss_mb()
        for _ in range(cycles):
            await admin.UnloadModel(admin_pb2.UnloadModelRequest(name=CLASSIFIER, version=2),
                                    timeout=60)
            await admin.LoadModel(admin_pb2.LoadModelRequest(name=CLASSIFIER, version=2),
                                  timeout=300)
        rss_after = child_rss_mb()
    return {
        "failed": steady.errors + during.errors,
        "requests": steady.requests + during.requests,
        "p99_steady_ms": steady.p99_ms,
        "p99_during_swaps_ms": during.p99_ms,
        "p99_swap_ratio": during.p99_ms / steady.p99_ms if steady.p99_ms else float("nan"),
        "throughput_ratio": during.throughput / steady.throughput if steady.throughput else 0.0,
        "versions_seen_during_swaps": seen,
        "swaps": swaps,
        "swap_ms": {
            "load_and_warm": load_ms,
            "swap_server_p50": float(np.median(server_swap)) if server_swap else float("nan"),
            "swap_server_max": max(server_swap, default=float("nan")),
            "activate_rpc_p50": float(np.median(rpc_ms)),
            "activate_rpc_max": max(rpc_ms),
        },
        "load_unload_cycles": cycles,
        "rss_before_cycles_mb": rss_before,
        "rss_growth_mb": rss_after - rss_before,
    }


def run(seconds: float = 6.0, swaps: int = 20, cycles: int = 50) -> dict[str, Any]:
    cfg = load_config()
    tmp = Path(tempfile.mkdtemp(prefix="aftercare-bench-swap-"))
    try:
        repo = link_repository(Path(cfg.models.repository), tmp / "repo")
        env = {
            "AFTERCARE_MODELS__REPOSITORY": str(repo),
            "AFTERCARE_MODELS__CLASSIFIER_VERSION": "1",
            "AFTERCARE_MODELS__EMBEDDER_VERSION": "1",
            "AFTERCARE_RECORDS__PATH": str(tmp / "records.sqlite"),
        }
        with running_server(env) as port:
            result = uvloop.run(measure(port, seconds, swaps, cycles))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"bench": "swap", "concurrency": 32, "seconds_per_phase": seconds, **result}


def _cmd(args: argparse.Namespace) -> int:
    print(json.dumps(run(args.seconds, args.swaps, args.cycles), default=float))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("swap", help="hot swaps under load, RSS over load/unload")
    p.add_argument("--seconds", type=float, default=6.0, help="per phase (steady, swaps)")
    p.add_argument("--swaps", type=int, default=20)
    p.add_argument("--cycles", type=int, default=50, help="load/unload cycles for RSS")
    p.set_defaults(func=_cmd)
