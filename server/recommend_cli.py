"""`aftercare eval recommend`: the CLI side of the recommender evaluation
(the protocol itself lives in `server.knowledge.recommend.evaluate`)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _cmd(args: argparse.Namespace) -> int:
    from server.knowledge.recommend.evaluate import run

    result = run(args.data, validation=args.validation, limit=args.limit, boot=args.bootstrap)
    print(json.dumps(result))
    return 0


def register_eval(subparsers: Any) -> None:
    """Add `recommend` to the `aftercare eval` subcommands."""
    p = subparsers.add_parser(
        "recommend", help="hit-rate/NDCG/recall@10: tuned recommender vs baselines, 2 protocols")
    p.add_argument("--data", required=True, help="shop data directory")
    p.add_argument("--validation", action="store_true",
                   help="score the second-to-last orders (for tuning) instead of the last")
    p.add_argument("--limit", type=int, help="evaluate at most this many customers")
    p.add_argument("--bootstrap", type=int, default=1000,
                   help="bootstrap resamples for the 95%% intervals (0 = none)")
    p.set_defaults(func=_cmd)
