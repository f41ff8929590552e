"""The `aftercare` command: serve, models, data, eval, bench, ask.

Each area registers its own subcommands; this module only mounts them, so nothing
heavy (torch, optimum, presidio) is imported unless that command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from server.config import load_config
from server.errors import AftercareError

log = logging.getLogger("aftercare")

# (module, function) pairs that add subcommands to a subparsers object. Imported
# lazily when present, so the CLI still works while an area is missing.
_BENCH = ("bench.classify", "bench.graph", "bench.search", "bench.pii", "bench.respond",
          "bench.affinity", "bench.burst", "bench.metrics_overhead", "bench.swap",
          "bench.replicas")
_EVAL = (("server.recommend_cli", "register_eval"),
         ("server.retention_cli", "register_eval"),
         ("bench.conversations", "register_eval"))


def _cmd_serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {"server": {}, "data": {}}
    if args.host:
        overrides["server"]["host"] = args.host
    if args.port is not None:
        overrides["server"]["port"] = args.port
    if args.data:
        overrides["data"]["dir"] = args.data
    if args.metrics_port is not None:
        overrides["metrics"] = {"port": args.metrics_port}
    config = load_config(args.config, overrides)
    logging.getLogger().setLevel(config.log_level)

    from server.app import build_app  # imports grpc, onnxruntime: only when serving

    async def main() -> None:
        app = build_app(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: loop.create_task(app.stop()))
        loop.add_signal_handler(signal.SIGHUP, app.reload_tls)
        await app.start()
        print(f"aftercare serving on {config.server.host}:{app.port}", flush=True)
        await app.wait_stopped()

    import uvloop

    uvloop.run(main())
    return 0


def _cmd_models_ensure(args: argparse.Namespace) -> int:
    from pathlib import Path

    from models.cli import ensure_default_models

    ensure_default_models(Path(args.repository))
    return 0


def _mount(sub: Any, module: str, func: str = "register") -> None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):  # the area itself is not there
            return
        raise
    register: Callable[[Any], None] = getattr(mod, func)
    register(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aftercare", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gRPC server")
    serve.add_argument("--config", action="append",
                       help="TOML config file; repeat it to merge several, later ones winning")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data", help="shop data directory (default: the demo shop)")
    serve.add_argument("--metrics-port", type=int,
                       help="/metrics and /dashboard port (default 9464; 0 = off)")
    serve.set_defaults(func=_cmd_serve)

    models = sub.add_parser("models", help="build and evaluate models").add_subparsers(
        dest="models_command", required=True
    )
    ensure = models.add_parser("ensure", help="build the default models if missing")
    ensure.add_argument("--repository", default="models/repository")
    ensure.set_defaults(func=_cmd_models_ensure)
    _mount(models, "models.cli")
    _mount(models, "server.models_cli")  # status, load, activate, ... against a server

    _mount(sub, "server.shop_cli")  # ingest, demo
    _mount(sub, "server.ask_cli")  # ask
    _mount(sub, "server.conversation.flows_cli")  # flows check
    _mount(sub, "server.keys_cli")  # keys new
    _mount(sub, "server.kpis_cli")  # kpis

    evals = sub.add_parser("eval", help="quality evaluations").add_subparsers(
        dest="eval_command", required=True
    )
    for module, func in _EVAL:
        _mount(evals, module, func)

    bench = sub.add_parser("bench", help="benchmarks (JSON summary on the last line)")
    benches = bench.add_subparsers(dest="bench_command", required=True)
    for module in _BENCH:
        _mount(benches, module)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    if args.verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    try:
        return int(args.func(args) or 0)
    except AftercareError as exc:
        print(f"aftercare: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
