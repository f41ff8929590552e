"""Config files layered in order, and the grpc server options that [server] sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.app import grpc_server_options
from server.config import load_config
from server.errors import InvalidInput


def test_several_files_merge_in_order(tmp_path: Path) -> None:
    base = tmp_path / "base.toml"
    base.write_text('[server]\nport = 50051\ngrace_s = 5.0\n[auth]\nenabled = true\n')
    auth = tmp_path / "auth.toml"
    auth.write_text('[server]\ngrace_s = 7.0\n[[auth.api_keys]]\nid = "k"\nsha256 = "00"\n')
    config = load_config([base, auth], environ={"AFTERCARE_SERVER__PORT": "50052"})
    assert config.server.grace_s == 7.0  # the later file wins
    assert config.server.port == 50052  # the environment over every file
    assert config.auth.enabled and [k.id for k in config.auth.api_keys] == ["k"]
    assert load_config(str(base), environ={}).server.grace_s == 5.0  # one path still works
    with pytest.raises(InvalidInput, match="not found"):
        load_config([base, tmp_path / "missing.toml"], environ={})
    auth.write_text("[server]\nmax_conection_age_ms = 1\n")  # a typo stops startup
    with pytest.raises(InvalidInput, match="max_conection_age_ms"):
        load_config([base, auth], environ={})


def test_connection_age_reaches_the_grpc_options() -> None:
    off = dict(grpc_server_options(load_config(None, environ={}).server))
    assert "grpc.max_connection_age_ms" not in off  # one process: never closed
    assert "grpc.max_connection_age_grace_ms" not in off
    cfg = load_config(None, {"server": {"max_connection_age_ms": 300_000,
                                        "max_connection_age_grace_ms": 5_000}}, environ={})
    on = dict(grpc_server_options(cfg.server))
    assert on["grpc.max_connection_age_ms"] == 300_000
    assert on["grpc.max_connection_age_grace_ms"] == 5_000
    assert on["grpc.max_receive_message_length"] == cfg.server.max_message_bytes
