"""`aftercare keys new`: make an API key, print it once, and the config lines with its hash.

The key is shown only here; the server stores and compares only its SHA-256.
"""

from __future__ import annotations

import argparse
import json
import secrets
from typing import Any


def register(subparsers: Any) -> None:
    keys = subparsers.add_parser("keys", help="API keys for [auth]").add_subparsers(
        dest="keys_command", required=True)
    new = keys.add_parser("new", help="a new API key and its [[auth.api_keys]] entry")
    new.add_argument("--id", required=True, help="the caller's id, e.g. gateway-1")
    new.add_argument("--roles", required=True, help="comma-separated: client,agent,admin")
    new.add_argument("--json", action="store_true", help="one JSON object instead")
    new.set_defaults(func=_cmd_new)


def _cmd_new(args: argparse.Namespace) -> int:
    from server.access.credentials import hash_key
    from server.access.roles import check_roles

    roles = [r.strip() for r in args.roles.split(",") if r.strip()]
    check_roles(roles, "--roles")
    key = "ak_" + secrets.token_urlsafe(32)
    digest = hash_key(key)
    if args.json:
        print(json.dumps({"id": args.id, "key": key, "sha256": digest, "roles": roles}))
        return 0
    print(f"API key for {args.id} (shown once; send it as metadata x-api-key):\n\n  {key}\n")
    print("Add to the server's config:\n")
    print("[[auth.api_keys]]")
    print(f"id = {json.dumps(args.id)}")
    print(f'sha256 = "{digest}"')
    print(f"roles = {json.dumps(roles)}")
    return 0
