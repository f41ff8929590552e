"""`aftercare kpis [--since ...] [--json]`: the KPIs of a running server (Admin.GetKpis)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import grpc

from aftercare.v1 import admin_pb2, admin_pb2_grpc
from server.api.client import SERVER_HELP, open_channel

_RATES = ("containment_rate", "escalation_rate", "fcr_rate", "conversion_rate",
          "reopen_rate", "draft_acceptance_rate")


def kpis_dict(k: admin_pb2.Kpis) -> dict[str, Any]:
    """Every field, zeros included, under its proto name (maps as dicts)."""
    return {f.name: dict(getattr(k, f.name)) if f.message_type is not None
            else getattr(k, f.name) for f in k.DESCRIPTOR.fields}


def _cmd_kpis(args: argparse.Namespace) -> int:
    with open_channel(args.server) as channel:
        try:
            k = admin_pb2_grpc.AdminStub(channel).GetKpis(admin_pb2.GetKpisRequest(
                since=args.since, until=args.until, channel=args.channel,
                intent=args.intent), timeout=args.timeout)
        except grpc.RpcError as err:
            print(f"aftercare kpis: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    data = kpis_dict(k)
    if args.json:
        print(json.dumps(data, sort_keys=True))
        return 0
    for key, value in data.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, v in sorted(value.items()):
                print(f"  {name:<28} {v:.3f}" if isinstance(v, float) else f"  {name:<28} {v}")
        elif key in _RATES:
            print(f"{key:<30} {100.0 * float(value):.1f}%")
        elif isinstance(value, float):
            print(f"{key:<30} {value:.2f}")
        else:
            print(f"{key:<30} {value}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("kpis", help="business KPIs from a running server")
    p.add_argument("--since", default="", help="ISO 8601 start (default: all time)")
    p.add_argument("--until", default="", help="ISO 8601 end, exclusive (default: now)")
    p.add_argument("--channel", default="")
    p.add_argument("--intent", default="")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--server", default="localhost:50051", help=SERVER_HELP)
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_cmd_kpis)
