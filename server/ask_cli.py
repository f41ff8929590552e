"""`aftercare ask "where is my order?" --customer C000001`: stream an answer from a
running server and print the final event (route, citations, actions, decision id)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import grpc

from aftercare.v1 import support_pb2, support_pb2_grpc
from server.api.client import SERVER_HELP, open_channel


def _cmd_ask(args: argparse.Namespace) -> int:
    with open_channel(args.server) as channel:
        stub = support_pb2_grpc.SupportStub(channel)
        call = stub.Respond(support_pb2.RespondRequest(
            text=args.text, customer_id=args.customer, conversation_id=args.conversation,
            channel=args.channel), timeout=args.timeout)
        try:
            decision_id = dict(call.initial_metadata()).get("decision-id", "")
            final = None
            for event in call:
                if event.HasField("delta"):
                    sys.stdout.write(event.delta.text)
                    sys.stdout.flush()
                else:
                    final = event.final
        except grpc.RpcError as err:
            print(f"\naftercare ask: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
    print("\n")
    if final is None:
        print(f"no final event (decision {decision_id})", file=sys.stderr)
        return 1
    print(f"decision:  {final.decision_id}")
    print(f"route:     {final.route} ({final.outcome})")
    print(f"intent:    {final.intent} ({final.confidence:.2f})")
    if final.rules_fired:
        print(f"rules:     {', '.join(final.rules_fired)}")
    for c in final.citations:
        print(f"cites:     {c.kind} {c.source_id}")
    for a in final.actions:
        extra = ", ".join(a.product_ids) or a.detail
        print(f"action:    {a.kind} [{a.status}] {a.action_id} {extra}".rstrip())
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("ask", help="stream an answer from a running server")
    p.add_argument("text")
    p.add_argument("--customer", default="", help="customer id (e.g. C000001)")
    p.add_argument("--conversation", default="")
    p.add_argument("--channel", default="chat", choices=("chat", "email", "social"))
    p.add_argument("--server", default="localhost:50051", help=SERVER_HELP)
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_cmd_ask)
