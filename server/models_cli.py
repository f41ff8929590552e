"""`aftercare models status|load|activate|rollback|unload|traffic|report`: the model
lifecycle from a shell, against a running server (`--server HOST:PORT`); and
`aftercare models retrain`, which builds a classifier version from the corrections in
the records database (offline; `--server` only tells it which version is active).

Loaded and active versions are each replica's own state: `status` and `report` take
any target (and show the replica the call reached), the commands that change
something refuse a target that names several servers.

Human-readable tables by default; `--json` prints one JSON document for scripts.
Errors print the server's status code and message and exit 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from aftercare.v1 import admin_pb2, admin_pb2_grpc
from models.cli import add_finetune_args
from server.api.client import SERVER_HELP, fans_out, open_channel
from server.errors import AftercareError, InvalidInput

DEFAULT_SERVER = "127.0.0.1:50051"


def _common() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--server", default=DEFAULT_SERVER, help=SERVER_HELP)
    parent.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parent.add_argument("--timeout", type=float, default=300.0, help="seconds per call")
    return parent


class _Target(argparse.Action):
    """--canary/--shadow V: remembers which one a following --percent belongs to."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.percent_of = self.dest


class _Percent(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        target = getattr(namespace, "percent_of", None)
        if target is None:
            parser.error("--percent must follow --canary V or --shadow V")
        setattr(namespace, f"{target}_percent", values)


class ServerCallFailed(AftercareError):
    """The server answered a lifecycle call with an error status."""


def register(subparsers: Any) -> None:
    common = _common()
    add = subparsers.add_parser
    add("status", parents=[common], help="loaded versions: state, role, traffic").set_defaults(
        func=_status)
    load = add("load", parents=[common], help="load (and check, warm) a version aside")
    load.add_argument("name")
    load.add_argument("version", nargs="?", type=int, default=0, help="0 = newest on disk")
    load.set_defaults(func=_load)
    activate = add("activate", parents=[common], help="swap a version in (loads it first)")
    activate.add_argument("name")
    activate.add_argument("version", type=int)
    activate.set_defaults(func=_activate)
    rollback = add("rollback", parents=[common], help="back to the previously active version")
    rollback.add_argument("name")
    rollback.set_defaults(func=_rollback)
    unload = add("unload", parents=[common], help="unload a version that is not active")
    unload.add_argument("name")
    unload.add_argument("version", type=int)
    unload.set_defaults(func=_unload)
    traffic = add("traffic", parents=[common],
                  help="set canary/shadow traffic and the rollback rule (no flags = clear)")
    traffic.add_argument("name")
    traffic.add_argument("--canary", type=int, default=0, metavar="V", action=_Target)
    traffic.add_argument("--shadow", type=int, default=0, metavar="V", action=_Target)
    traffic.add_argument("--percent", type=float, metavar="P", action=_Percent,
                         help="share 0-100 of the --canary or --shadow just before it")
    traffic.add_argument("--min-agreement", type=float, default=0.0)
    traffic.add_argument("--min-requests", type=int, default=0)
    traffic.add_argument("--max-error-rate", type=float, default=0.0)
    traffic.add_argument("--max-p99-ratio", type=float, default=0.0)
    traffic.set_defaults(func=_traffic)
    report = add("report", parents=[common], help="per-version traffic figures and events")
    report.add_argument("name")
    report.set_defaults(func=_report)
    retrain = add("retrain", help="build a classifier version from base data + corrections")
    retrain.add_argument("--since", default="", help="only corrections from this ISO date on")
    retrain.add_argument("--min-corrections", type=int, default=1,
                         help="refuse to run with fewer corrections (default 1)")
    retrain.add_argument("--weight", type=int, default=3, help="copies of each correction")
    retrain.add_argument("--force", action="store_true",
                         help="write the version even if it is worse on the base folds")
    retrain.add_argument("--records", help="records database: a SQLite file or a records.url "
                         "(default: config records.url, else records.path)")
    retrain.add_argument("--config", help="TOML config file (records path, repository)")
    retrain.add_argument("--repository", type=Path, help="model repository (default config)")
    retrain.add_argument("--intents", type=Path, help="base training CSV (default demo intents)")
    retrain.add_argument("--server", default="", help="HOST:PORT to ask for the active version "
                         "(default: the newest classifier on disk)")
    retrain.add_argument("--text-col", default="text")
    retrain.add_argument("--label-col", default="intent")
    retrain.add_argument("--max-length", type=int, default=128)
    retrain.add_argument("--source", type=Path, help="a Hugging Face model folder (default MiniLM)")
    retrain.add_argument("--cache-dir", type=Path, help="encoder cache")
    retrain.add_argument("--augment-copies", type=int, default=2)
    retrain.add_argument("--cosine-floor", type=float, default=0.98)
    retrain.add_argument("--seed", type=int, default=0)
    add_finetune_args(retrain)
    retrain.set_defaults(func=_retrain)


def _call(args: argparse.Namespace, fn: Callable[[admin_pb2_grpc.AdminStub], Any], *,
          changes: bool = True) -> Any:
    if changes and fans_out(args.server):
        # Round-robin would change whichever replica the call happens to reach.
        raise InvalidInput(
            f"{args.server} names several servers and `models {args.models_command}` changes "
            "one: name one server (a pod's HOST:PORT), or roll a version out to every "
            "replica through config (models.classifier_version, models.embedder_version)")
    with open_channel(args.server) as channel:
        try:
            return fn(admin_pb2_grpc.AdminStub(channel))
        except grpc.RpcError as exc:
            code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise ServerCallFailed(f"{args.server}: {code}: {details}") from None


def _print(args: argparse.Namespace, message: Any, table: Callable[[], None]) -> int:
    if args.json:
        print(json.dumps(MessageToDict(message, preserving_proto_field_name=True,
                                       always_print_fields_with_no_presence=True),
                         sort_keys=True))
    else:
        table()
    return 0


def _rows(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    cells = [list(map(str, headers))] + [[_cell(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 100 else f"{value:.0f}"
    return str(value)


def _status(args: argparse.Namespace) -> int:
    resp = _call(args, lambda s: s.ListModels(admin_pb2.ListModelsRequest(),
                                             timeout=args.timeout), changes=False)
    return _print(args, resp, lambda: _rows(
        ("name", "version", "state", "role", "traffic", "providers", "error"),
        [(m.name, m.version, m.state, m.role, m.traffic or "-", ",".join(m.providers) or "-",
          m.error[:60] or "-") for m in resp.models]))


def _info_table(info: admin_pb2.ModelInfo) -> Callable[[], None]:
    return lambda: _rows(("name", "version", "state", "role", "traffic"),
                         [(info.name, info.version, info.state, info.role, info.traffic or "-")])


def _load(args: argparse.Namespace) -> int:
    info = _call(args, lambda s: s.LoadModel(
        admin_pb2.LoadModelRequest(name=args.name, version=args.version), timeout=args.timeout))
    return _print(args, info, _info_table(info))


def _unload(args: argparse.Namespace) -> int:
    info = _call(args, lambda s: s.UnloadModel(
        admin_pb2.UnloadModelRequest(name=args.name, version=args.version),
        timeout=args.timeout))
    return _print(args, info, _info_table(info))


def _swap_table(resp: admin_pb2.ActivateModelResponse) -> Callable[[], None]:
    return lambda: print(f"{resp.previous or '-'} -> {resp.active}")


def _activate(args: argparse.Namespace) -> int:
    resp = _call(args, lambda s: s.ActivateModel(
        admin_pb2.ActivateModelRequest(name=args.name, version=args.version),
        timeout=args.timeout))
    return _print(args, resp, _swap_table(resp))


def _rollback(args: argparse.Namespace) -> int:
    resp = _call(args, lambda s: s.Rollback(admin_pb2.RollbackRequest(name=args.name),
                                           timeout=args.timeout))
    return _print(args, resp, _swap_table(resp))


def traffic_policy(args: argparse.Namespace) -> admin_pb2.TrafficPolicy:
    return admin_pb2.TrafficPolicy(
        name=args.name,
        canary_version=args.canary, canary_percent=getattr(args, "canary_percent", 0.0),
        shadow_version=args.shadow, shadow_percent=getattr(args, "shadow_percent", 0.0),
        rollback=admin_pb2.RollbackRule(
            max_error_rate=args.max_error_rate, max_p99_ratio=args.max_p99_ratio,
            min_agreement=args.min_agreement, min_requests=args.min_requests),
    )


def _traffic(args: argparse.Namespace) -> int:
    policy = _call(args, lambda s: s.SetTrafficPolicy(traffic_policy(args),
                                                     timeout=args.timeout))
    return _print(args, policy, lambda: print(_describe(policy)))


def _describe(p: admin_pb2.TrafficPolicy) -> str:
    r = p.rollback
    return (f"{p.name}: canary v{p.canary_version} {p.canary_percent:g}%, shadow "
            f"v{p.shadow_version} {p.shadow_percent:g}%; rollback when agreement < "
            f"{r.min_agreement:g}, error rate > {r.max_error_rate:g}, p99 ratio > "
            f"{r.max_p99_ratio:g} after {r.min_requests} requests (0 = off)")


def _report(args: argparse.Namespace) -> int:
    rep = _call(args, lambda s: s.GetTrafficReport(
        admin_pb2.GetTrafficReportRequest(name=args.name), timeout=args.timeout),
        changes=False)

    def table() -> None:
        print(_describe(rep.policy))
        _rows(("version", "traffic", "requests", "errors", "p50_ms", "p99_ms", "compared",
               "agreement", "shadow_dropped"),
              [(v.version, v.traffic or "-", v.requests, v.errors, v.p50_ms, v.p99_ms,
                v.compared, v.agreement, v.shadow_dropped) for v in rep.versions])
        print()
        _rows(("at", "kind", "actor", "detail"),
              [(e.at, e.kind, e.actor, e.detail) for e in rep.events[-20:]])

    return _print(args, rep, table)


def _active_classifier(server: str, name: str, timeout: float = 30.0) -> int:
    with open_channel(server) as channel:
        try:
            models = admin_pb2_grpc.AdminStub(channel).ListModels(
                admin_pb2.ListModelsRequest(), timeout=timeout).models
        except grpc.RpcError as exc:
            raise ServerCallFailed(f"{server}: {exc.code().name}: {exc.details()}") from None
    return next((m.version for m in models if m.name == name and m.state == "ACTIVE"), 0)


def _retrain(args: argparse.Namespace) -> int:
    from models.build import CLASSIFIER_NAME, BuildOptions
    from models.cli import default_cache_dir, finetune_config_from
    from models.repository import ModelRepository
    from models.retrain import LabelledExample, retrain_classifier
    from server.config import load_config
    from server.records.audit import read_corrections
    from server.records.sql import redact_url

    config = load_config(args.config)
    url, path = config.records.url, config.records.path
    if args.records:
        url, path = (args.records, "") if "://" in args.records else ("", args.records)
    records = redact_url(url) if url else path
    stored = read_corrections(path, args.since, url=url)
    if len(stored) < max(1, args.min_corrections):
        raise ServerCallFailed(f"{len(stored)} corrections in {records}"
                               f"{' since ' + args.since if args.since else ''}; "
                               f"need at least {max(1, args.min_corrections)}")
    options = BuildOptions(
        repository=args.repository or Path(config.models.repository), intents=args.intents,
        text_col=args.text_col, label_col=args.label_col, only="classifier",
        max_length=args.max_length, source=args.source,
        cache_dir=args.cache_dir or default_cache_dir(), augment_copies=args.augment_copies,
        seed=args.seed, cosine_floor=args.cosine_floor,
        finetune=args.finetune, finetune_config=finetune_config_from(args),
    )
    repo = ModelRepository(options.repository)
    version = _active_classifier(args.server, CLASSIFIER_NAME) if args.server else 0
    active = repo.get(CLASSIFIER_NAME, version) if version else (
        repo.latest(CLASSIFIER_NAME) if repo.versions(CLASSIFIER_NAME) else None)
    result = retrain_classifier(
        options, [LabelledExample(c.seq, c.text, c.true_intent) for c in stored], active,
        weight=args.weight, force=args.force)
    print(f"{result.version.name} v{result.version.version} -> {result.version.path}: "
          f"base held-out macro-F1 {result.figures['base_heldout_macro_f1']:.4f} (active "
          f"{result.figures['active_base_heldout_macro_f1']:.4f}), "
          f"{result.figures['corrections']} corrections")
    print(json.dumps({"version": result.version.version, **result.figures}, sort_keys=True))
    return 0
