"""`aftercare flows check [FILE ...]`: load flow files the way the server does and say
what is in them, so a broken flow is found before a deploy, not at start-up."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import msgspec

from server.config import load_config
from server.conversation.flow_sources import configured_flows

REPO_ROOT = Path(__file__).resolve().parents[2]


def _cmd_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    flows = msgspec.structs.replace(config.flows, paths=[*config.flows.paths, *args.files],
                                    use_shared=config.flows.use_shared and not args.no_shared)
    engine = configured_flows(flows, config.data, REPO_ROOT)  # DataError -> exit 2
    summary = []
    for flow_id in engine.flow_ids:
        f = engine.flow(flow_id)
        summary.append({"id": f.id, "source": f.source, "intents": f.intents,
                        "steps": len(f.steps),
                        "slots": sorted({s for st in f.steps for s in st.needs}),
                        "ends": sorted({st.action for st in f.steps if st.action})})
    print(json.dumps({"flows": len(summary), "details": summary}))
    return 0


def register(subparsers: Any) -> None:
    flows = subparsers.add_parser("flows", help="guided flows").add_subparsers(
        dest="flows_command", required=True)
    check = flows.add_parser("check", help="load flow files like the server; JSON summary")
    check.add_argument("files", nargs="*", help="flow files (TOML), after the configured ones")
    check.add_argument("--config", help="TOML config file ([flows] is read from it)")
    check.add_argument("--no-shared", action="store_true", help="leave out the ABCD flows")
    check.set_defaults(func=_cmd_check)
