"""`aftercare eval retention`: registered here, computed in server/retention/evaluate.py."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _cmd(args: argparse.Namespace) -> int:
    from server.governance.policy import load_policy
    from server.retention.evaluate import run_dir

    shrink = args.shrink if args.shrink is not None else load_policy(
        args.policy).retention.replenish_shrink
    print(json.dumps(run_dir(args.data, shrink, args.consumables_only, args.validation)))
    return 0


def register_eval(subparsers: Any) -> None:
    """Add `retention` to the `aftercare eval` subcommands."""
    p = subparsers.add_parser(
        "retention", help="replenish timing MAE (days) vs product-median and last-interval")
    p.add_argument("--data", required=True, help="shop data directory")
    p.add_argument("--consumables-only", action="store_true",
                   help="only products with a replenish_days cadence in the catalogue")
    p.add_argument("--shrink", type=float,
                   help="weight of the product's cadence (default: the policy's)")
    p.add_argument("--policy", help="policy file (default: the shipped one)")
    p.add_argument("--validation", action="store_true",
                   help="score the second-to-last purchases (for tuning) instead of the last")
    p.set_defaults(func=_cmd)
