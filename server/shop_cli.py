"""`aftercare ingest` and `aftercare demo generate`: the shop data commands.

Mounted by server/cli.py through `register(subparsers)`; each command sets `func`
(args -> exit code). Both print a human summary and, on the last line, one JSON
object for scripts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from server.errors import InvalidInput


def register(subparsers: Any) -> None:
    ingest = subparsers.add_parser(
        "ingest", help="validate, normalize and resolve a shop data directory"
    )
    ingest.add_argument("dir", type=Path, help="shop directory (one CSV or JSONL per entity)")
    ingest.add_argument("--quarantine", type=Path, help="directory for the quarantine JSONL")
    ingest.add_argument(
        "--as-of", help="the shop's 'now' (ISO 8601) when the directory has no shop.json"
    )
    ingest.add_argument(
        "--mapping", type=Path,
        help="TOML file mapping the export's files, columns and date formats onto the schema",
    )
    ingest.add_argument(
        "--currency", default="",
        help="default currency of rows that name none, when shop.json has no `currency`",
    )
    ingest.set_defaults(func=_cmd_ingest)

    demo = subparsers.add_parser("demo", help="the generated demo shop").add_subparsers(
        dest="demo_command", required=True
    )
    gen = demo.add_parser("generate", help="write a seeded demo shop directory")
    gen.add_argument("--out", type=Path, required=True, help="output directory")
    gen.add_argument("--size", default="S", choices=("XS", "S", "M", "L"))
    gen.add_argument("--seed", type=int, default=7)
    gen.add_argument(
        "--dirty", action="store_true", help="add bad rows and duplicates (for ingestion demos)"
    )
    gen.set_defaults(func=_cmd_generate)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from server.knowledge.shop.ingest import ingest_dir
    from server.knowledge.shop.mapping import load_mapping
    from server.knowledge.shop.normalize import RowError, required_timestamp
    from server.knowledge.shop.quarantine import TOP, describe

    as_of = None
    if args.as_of:
        try:
            as_of = required_timestamp(args.as_of, "--as-of")
        except RowError as exc:
            raise InvalidInput(str(exc)) from None
    result = ingest_dir(args.dir, args.quarantine, as_of, mapping=load_mapping(args.mapping),
                        currency=args.currency)
    summary = result.summary()
    print(f"{'entity':<12} {'read':>9} {'accepted':>9} {'quarantined':>11} {'merged':>7}")
    for entity in summary["entities"]:
        c = summary["entities"][entity]
        print(
            f"{entity:<12} {c['read']:>9} {c['accepted']:>9} {c['quarantined']:>11} "
            f"{c['merged']:>7}"
        )
    print(f"snapshot {summary['snapshot_id']}  as_of {summary['as_of']}  in {result.seconds:.2f} s")
    if summary["derived"]:
        print("derived: " + ", ".join(f"{k} {v}" for k, v in summary["derived"].items()))
    groups = summary["quarantine"]["reasons"]
    if groups:
        print(f"quarantined {summary['quarantine']['rows']} rows for {len(groups)} reasons; "
              f"the {min(TOP, len(groups))} most common:")
        for group in groups[:TOP]:
            print(describe(group))
    if result.quarantine_path:
        print(f"quarantine: {result.quarantine_path}")
    print(json.dumps(summary, sort_keys=True))
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from server.demo.generate import generate

    t0 = time.perf_counter()
    counts = generate(args.out, args.size, args.seed, dirty=args.dirty)
    seconds = time.perf_counter() - t0
    for entity, n in counts.items():
        print(f"{entity:<12} {n:>9}")
    print(f"wrote {args.out} (size {args.size}, seed {args.seed}) in {seconds:.2f} s")
    print(
        json.dumps(
            {
                "out": str(args.out),
                "size": args.size,
                "seed": args.seed,
                "dirty": args.dirty,
                "rows": counts,
                "seconds": round(seconds, 3),
            },
            sort_keys=True,
        )
    )
    return 0
